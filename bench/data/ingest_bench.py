"""Peak memory and speed of `usconvirt ingest` on a DICOM export, for several worker counts.

    python bench/data/ingest_bench.py EXPORT_DIR REPORTS.csv --workers 1 2 [--out-root /tmp/ingest-bench]

Each run is `/usr/bin/time -v usconvirt ingest ...` in a fresh process. Printed per run: wall time, CPU
time (user + sys of the whole process tree), frames per wall second and per CPU second, the largest
single process's peak RSS (what `time -v` reports) and the peak of the summed RSS of the process tree
(sampled every 0.2 s from /proc; it counts pages shared between the parent and its forked workers twice,
so it is an upper bound). On a shared machine compare CPU time, not wall time: `load` is the 1-minute
load average at the start of each run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

KEY = "bench-key-0123456789"


def tree_rss_kb(pid: int) -> int:
    """Summed VmRSS of `pid` and all its descendants."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) if "VmRSS" in status else 0
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError, AttributeError):
            continue
    return total


def run_once(export: Path, reports: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.parent / f".{out.name}.partial", ignore_errors=True)
    usconvirt = Path(sys.executable).with_name("usconvirt")
    cmd = ["/usr/bin/time", "-v", str(usconvirt), "ingest", str(export), "--reports", str(reports),
           "--out", str(out), "--key", KEY, "--workers", str(workers)]
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({proc.returncode}):\n{stderr[-2000:]}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", stderr).group(1).strip()

    wall_parts = [float(x) for x in field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")]
    wall = sum(x * 60 ** i for i, x in enumerate(reversed(wall_parts)))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    frames = int(re.search(r"(\d+) frames in", stdout).group(1))
    return {"frames": frames, "workers": workers, "wall": wall, "cpu": cpu, "load": load,
            "max_rss_mb": int(field("Maximum resident set size (kbytes)")) / 1024, "tree_mb": peak[0] / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("reports", type=Path)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out-root", type=Path, default=Path("/tmp/ingest-bench"))
    parser.add_argument("--keep", action="store_true", help="keep the last dataset written")
    args = parser.parse_args()
    print(f"{'export':28s} {'frames':>6s} {'workers':>7s} {'load':>5s} {'wall s':>7s} {'CPU s':>7s} "
          f"{'fr/s':>6s} {'fr/CPU-s':>8s} {'maxRSS MB':>9s} {'tree MB':>8s}", flush=True)
    for workers in args.workers:
        out = args.out_root / f"{args.export.name}-w{workers}"
        r = run_once(args.export, args.reports, out, workers)
        print(f"{args.export.name:28s} {r['frames']:6d} {workers:7d} {r['load']:5.1f} {r['wall']:7.1f} "
              f"{r['cpu']:7.1f} {r['frames'] / r['wall']:6.1f} {r['frames'] / r['cpu']:8.1f} "
              f"{r['max_rss_mb']:9.0f} {r['tree_mb']:8.0f}", flush=True)
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
