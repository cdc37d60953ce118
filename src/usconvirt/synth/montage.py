"""Side-by-side montage of synthetic and real kidney frames, to judge the simulator by eye.

python -m usconvirt.synth.montage --real ../shared/data/real --out docs/synthetic-vs-real-kidneys.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from usconvirt.io import atomic_path
from usconvirt.synth.config import KIDNEY_FINDINGS, Prevalences
from usconvirt.synth.exam import sample_exam, sample_kidney
from usconvirt.synth.protocol import FramePlan, sections
from usconvirt.synth.render import render_frame

REAL_FOLDERS = ("ahn_kidney/frames/images", "kidney_stone/images")


def synthetic_kidneys(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Long-axis kidney frames cycling through normal and every finding, aimed at the lesion."""
    rng = np.random.default_rng(seed)
    findings = ("normal",) + KIDNEY_FINDINGS[:-1]
    frames = []
    for i in range(count):
        exam = sample_exam(rng, Prevalences(kidney_abnormal=0.0), "exam", "patient", "2021-03-04", "A.B.", 50)
        side = ("right", "left")[i % 2]
        kidney = sample_kidney(rng, side, findings[i % len(findings)])
        exam.kidneys[side] = kidney
        view = "long" if i % 3 else "transverse"
        cut = (kidney.lesions[0].w if view == "long" else kidney.lesions[0].u) if kidney.lesions else 0.3
        plan = FramePlan("kidney", side, view, cut, sections(kidney, view, cut), calipers=i % 4 == 0)
        frames.append(render_frame(rng, exam, plan, size))
    return frames


def real_kidneys(root: Path, count: int, size: int) -> list[np.ndarray]:
    """The first `count` real kidney frames (alternating sources), grayscale, resized."""
    lists = [sorted((root / folder).glob("*.png")) for folder in REAL_FOLDERS]
    paths = [p for pair in zip(*lists, strict=False) for p in pair][:count]
    return [np.asarray(Image.open(p).convert("L").resize((size, size), Image.BILINEAR)) for p in paths]


def grid(frames: list[np.ndarray], columns: int) -> np.ndarray:
    size = frames[0].shape[0]
    rows = -(-len(frames) // columns)
    out = np.zeros((rows * size, columns * size), np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        out[r * size : (r + 1) * size, c * size : (c + 1) * size] = frame
    return out


def make_montage(real_root: Path, out: Path, per_side: int = 8, thumb: int = 128, seed: int = 0) -> Path:
    """Synthetic frames on the left, real ones on the right, one caption bar on top."""
    synthetic = [
        np.asarray(Image.fromarray(f).resize((thumb, thumb), Image.BILINEAR))
        for f in synthetic_kidneys(per_side, 256, seed)
    ]
    real = real_kidneys(real_root, per_side, thumb)
    columns = per_side // 2
    left, right = grid(synthetic, columns), grid(real, columns)
    gap = np.full((left.shape[0], 8), 255, np.uint8)
    body = np.concatenate([left, gap, right], axis=1)
    canvas = Image.new("L", (body.shape[1], body.shape[0] + 16), 255)
    canvas.paste(Image.fromarray(body), (0, 16))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), "synthetic (usconvirt synth)", fill=0)
    draw.text(
        (left.shape[1] + 12, 2),
        "real (AHN kidney, Apache-2.0; Kidney Stone, CC BY-SA 4.0, M. Momeni)",
        fill=0,
    )
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)
    out.chmod(0o644)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Montage of synthetic vs real kidney frames.")
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--out", type=Path, default=Path("docs/synthetic-vs-real-kidneys.png"))
    parser.add_argument("--per-side", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(make_montage(args.real, args.out, args.per_side, seed=args.seed))


if __name__ == "__main__":
    main()
