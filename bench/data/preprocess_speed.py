"""Time ultrasound preprocessing per frame (target: < 5 ms at 512 px) and print a table.

Usage: python bench/data/preprocess_speed.py [FRAMES_DIR ...]  (default: ../shared/data/real frames)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from usconvirt.data.preprocess import clean_frame, colour_overlay, overlay_mask, sector_mask, to_grayscale

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
DEFAULT_DIRS = [REAL / "ahn_kidney" / "frames" / "images", REAL / "kidney_stone" / "images"]


def best_ms(fn, frames: list[np.ndarray], repeats: int = 5) -> tuple[float, float]:
    """Best-of-`repeats` wall and CPU time per frame, in ms; CPU time stays meaningful on a loaded machine."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for frame in frames:
            fn(frame)
        wall.append((time.perf_counter() - start) / len(frames) * 1000)
        cpu.append((time.process_time() - start_cpu) / len(frames) * 1000)
    return min(wall), min(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path,
                        help="folders of PNG frames (default: ../shared/data/real frames)")
    dirs = parser.parse_args().dirs or DEFAULT_DIRS
    frames = [np.asarray(Image.open(p).convert("RGB")) for d in dirs for p in sorted(d.glob("*.png"))]
    if not frames:
        sys.exit(f"no PNG frames in {', '.join(map(str, dirs))}")
    grays = [to_grayscale(f) for f in frames]
    steps = {
        "to_grayscale": (to_grayscale, frames),
        "colour_overlay": (colour_overlay, frames),
        "sector_mask": (sector_mask, grays),
        "overlay_mask": (overlay_mask, grays),
        "clean_frame (all)": (clean_frame, frames),
    }
    shape = "x".join(map(str, frames[0].shape))
    print(f"{len(frames)} frames, {shape}")
    print(f"{'step':<20} {'wall ms':>8} {'cpu ms':>8}")
    for name, (fn, inputs) in steps.items():
        wall, cpu = best_ms(fn, inputs)
        print(f"{name:<20} {wall:>8.2f} {cpu:>8.2f}")


if __name__ == "__main__":
    main()
