"""Test set-up: no network, fixed seeds, small CPU thread counts."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """../shared/data/real: real kidney frames (read-only, never copied into the repo)."""
    if not SHARED_REAL.exists():
        pytest.skip("../shared/data/real is not beside this checkout")
    return SHARED_REAL


@pytest.fixture(scope="session")
def run_main():
    """`usconvirt ARGS` in-process with stdout, stderr and the log captured, for module-scoped fixtures;
    returns (exit code, everything printed or logged)."""
    import io
    import logging
    import sys

    from usconvirt.cli import main

    def run(*args) -> tuple[int, str]:
        stream, patch = io.StringIO(), pytest.MonkeyPatch()
        patch.setattr(sys, "argv", ["usconvirt", *map(str, args)])
        patch.setattr(sys, "stdout", stream)
        patch.setattr(sys, "stderr", stream)
        handler = logging.StreamHandler(stream)
        logging.getLogger().addHandler(handler)
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            patch.undo()
            logging.getLogger().removeHandler(handler)
        return code, stream.getvalue()

    return run


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `usconvirt ARGS` in-process through `usconvirt.cli:main`; (exit code, stdout + stderr)."""
    import sys

    from usconvirt.cli import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["usconvirt", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(2)
    except ImportError:
        pass


@pytest.fixture
def new_process():
    """Run `python -c CODE ARGS` in a fresh interpreter (PYTHONHASHSEED=`hash_seed` when given), importing
    the same usconvirt as this one, its stderr not a terminal; returns its stdout. What two invocations of
    one command share is only their inputs."""
    import subprocess
    import sys

    import usconvirt

    source = str(Path(usconvirt.__file__).resolve().parents[1])

    def run(code: str, *args, hash_seed: str | None = None) -> str:
        path = os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path} | ({"PYTHONHASHSEED": hash_seed} if hash_seed else {})
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    return run
