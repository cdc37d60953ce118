"""Synthetic corpus speed: frames rendered per second (one core) and peak memory, per image size.

.venv/bin/python bench/synth_bench.py [--frames 200] [--sizes 128 256]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from usconvirt.synth.config import SynthConfig
from usconvirt.synth.corpus import plan_cohort
from usconvirt.synth.render import render_frame


def bench(size: int, frames: int) -> tuple[float, float]:
    """Frames/s of rendering (CPU time of this process) over the frames of a planned cohort."""
    exams = plan_cohort(SynthConfig(exams=max(1, frames // 10), seed=0))
    plans = [(e, f) for e in exams for f in e.frames][:frames]
    render_frame(np.random.default_rng(0), plans[0][0].state, plans[0][1], size)  # warm the sector cache
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    for i, (exam, plan) in enumerate(plans):
        render_frame(np.random.default_rng(i), exam.state, plan, size)
    return len(plans) / (time.process_time() - start_cpu), len(plans) / (time.perf_counter() - start_wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    args = parser.parse_args()
    print(f"{'size':>6} {'frames':>7} {'img/s (cpu)':>12} {'img/s (wall)':>13} {'peak RSS MiB':>13}")
    for size in args.sizes:
        cpu_rate, wall_rate = bench(size, args.frames)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{size:>6} {args.frames:>7} {cpu_rate:>12.1f} {wall_rate:>13.1f} {peak:>13.0f}")


if __name__ == "__main__":
    main()
