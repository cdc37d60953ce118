"""Pools of the data stages survive the signal handlers a caller installs (the CLI's SIGTERM handler)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import signal
from usconvirt.data.workers import process_map

def refuse(signum, frame):
    raise RuntimeError("the parent's handler ran in a worker")

signal.signal(signal.SIGTERM, refuse)  # as usconvirt.cli.main does
with process_map(2) as pool_map:
    print(sorted(pool_map(abs, [-3, -1, -2])))
"""


def test_pool_stops_cleanly_under_a_raising_sigterm_handler():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[1, 2, 3]", done.stderr
    assert "handler ran in a worker" not in done.stderr
