"""Datasets of small organ crops (the kind of real abdominal frames) and the default stage run on them.

    python bench/cluster_crops.py make SYNTH_DATASET OUT [--seed 1] [--scanner]
    python bench/cluster_crops.py run DATASET [DATASET ...] [--set key=value ...] [--shared-preprocessing]
    python bench/cluster_crops.py preprocess DATASET
    python bench/cluster_crops.py detect [DATASET ...] [--real ../shared/data/real]

make: every frame of a synthetic corpus becomes a crop file: a box of 35-60 % of the side (aspect
0.75-1.33) around the middle of the sector, where the organ is, resized to a random 28-96 px on its
short side, saved as PNG or (one in three) JPEG; `--scanner` also alters each exam as another scanner
would show it (gain, grey-map gamma, blur). Organ labels and exams are kept (they only name and score).
run: the stage as `usconvirt cluster DATASET --out OUT --image-size 64` runs it (ClusterConfig defaults,
--set overrides), one row per dataset: held-out and mapping-frame F1, the plain PCA baseline, wall time;
`--shared-preprocessing` feeds it every frame as data/preprocess.py did before organ crops were kept whole.
preprocess: how far the shared preprocessing (data/preprocess.py) moves crops away from a plain resize,
and what it does with them now (`is_crop`: kept whole, resized).
detect: the share of frames data/preprocess.is_crop takes for crops: real exports (AHN, Samsung
kidney-stone frames and AHN cut-outs on black), real crops (the AHN kidney mask boxes, and 4 random
boxes of 25-45 % of the side inside each of the first 26 real frames) and each DATASET.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from usconvirt.clustering import ClusterConfig
from usconvirt.config import from_dict
from usconvirt.data.images import read_frame
from usconvirt.data.preprocess import (
    clean_sector,
    is_crop,
    preprocess_ultrasound,
    resize_crop,
    resize_pad,
    to_grayscale,
)
from usconvirt.run_layout import RunLayout


def crop_box(size: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a box around the sector's middle (the organ in synthetic frames)."""
    h = int(size * rng.uniform(0.35, 0.6))
    w = min(int(h * rng.uniform(0.75, 1.33)), size * 3 // 4)
    top = int(rng.integers(size // 4, size - h - size // 8 + 1))
    left = int(rng.integers(size // 8, size - w - size // 8 + 1))
    return top, left, h, w


def scanner_look(rng: np.random.Generator) -> tuple[float, float, float]:
    return rng.uniform(0.6, 1.5), rng.uniform(0.6, 1.7), rng.uniform(0.0, 1.2)  # gain, gamma, blur px


def apply_look(gray: np.ndarray, look: tuple[float, float, float]) -> np.ndarray:
    gain, gamma, blur = look
    x = np.clip(gray.astype(np.float32) / 255.0 * gain, 0, 1) ** gamma
    return (np.clip(ndimage.gaussian_filter(x, blur), 0, 1) * 255).astype(np.uint8)


def make(source: Path, out: Path, seed: int, scanner: bool) -> None:
    rng = np.random.default_rng(seed)
    images = pd.read_csv(source / "images.csv", dtype=str, keep_default_na=False)
    if out.exists():
        shutil.rmtree(out)
    (out / "crops").mkdir(parents=True)
    shutil.copy(source / "exams.csv", out / "exams.csv")
    looks = {e: scanner_look(rng) for e in images["exam_id"].unique()}
    paths = []
    for row in images.itertuples():
        gray = to_grayscale(read_frame(source / row.path))
        top, left, h, w = crop_box(gray.shape[0], rng)
        crop = gray[top:top + h, left:left + w]
        if scanner:
            crop = apply_look(crop, looks[row.exam_id])
        short = int(rng.uniform(28, 96))
        crop = np.asarray(Image.fromarray(crop).resize((max(8, round(short * w / h)), short), Image.BILINEAR))
        path = f"crops/{row.image_id}.{'jpg' if rng.random() < 1 / 3 else 'png'}"
        Image.fromarray(crop).save(out / path, quality=int(rng.integers(85, 96)))
        paths.append(path)
    images["path"], images["side"] = paths, ""  # crops carry no side; nothing reads truth here
    images.to_csv(out / "images.csv", index=False)
    print(f"{out}: {len(images)} crops from {source} (seed {seed}{', scanner looks' if scanner else ''})")


def run(paths: list[Path], sets: list[str], shared: bool = False) -> None:
    from cluster_acceptance import cluster_all_frames, overrides

    if shared:  # the preprocessing before the crop fix: every frame sector-cropped and padded
        from usconvirt.clustering import run as stage
        from usconvirt.data.images import read_frame as read

        def old_frames(ds, size, ids, workers=1):
            paths = ds.images.set_index("image_id").loc[ids, "path"]
            return np.stack([before_crop_fix(read(ds.image_path(p)), size) for p in paths]), 0

        stage.load_cluster_frames = old_frames
    config = from_dict(ClusterConfig, {"image_size": 64, **overrides(sets)})
    print(f"{'dataset':<28}{'frames':>7}{'crops':>6}{'K':>4}{'wall s':>7}{'held-out w/kid':>16}"
          f"{'mapping w/kid':>15}{'plain PCA w/kid':>17}")  # the baseline pca32
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="cluster_crops_") as tmp:
            start = time.perf_counter()
            m = cluster_all_frames(RunLayout(Path(tmp), dataset=path), config)
            wall = time.perf_counter() - start
        mapped = m.get("mapped_scores", {})
        raw = m.get("baselines", {}).get(m.get("selection", {}).get("baseline"), {})
        print(f"{path.name:<28}{m['frames']:>7}{m['crop_frames']:>6}{m['kmeans_clusters']:>4}{wall:>7.0f}"
              f"{m.get('weighted_f1')!s:>9}/{m.get('kidney_f1')!s:<6}{mapped.get('weighted_f1')!s:>8}/"
              f"{mapped.get('kidney_f1')!s:<6}{raw.get('weighted_f1')!s:>10}/{raw.get('kidney_f1')!s:<6}",
              flush=True)


def before_crop_fix(frame: np.ndarray, size: int) -> np.ndarray:
    """What data/preprocess.py did to every frame before organ crops were kept whole."""
    return resize_pad(clean_sector(frame)[0], size)


def preprocess(path: Path) -> None:
    images = pd.read_csv(path / "images.csv", dtype=str, keep_default_na=False)
    shared, stage, crops = [], [], []
    for p in images["path"]:
        frame = read_frame(path / p)
        plain = resize_crop(to_grayscale(frame), 64).astype(np.float32)
        shared.append(np.abs(before_crop_fix(frame, 64) - plain).mean())
        stage.append(np.abs(preprocess_ultrasound(frame, 64).image - plain).mean())
        crops.append(is_crop(to_grayscale(frame)))
    shared, stage = np.array(shared), np.array(stage)
    print(f"{path}: {len(images)} frames, {np.mean(crops):.1%} taken for crops")
    print(f"{'loader':<34}{'mean |frame - plain resize|':>28}{'frames off by > 2 gray':>24}")
    print(f"{'shared preprocessing (before)':<34}{shared.mean():>28.1f}{np.mean(shared > 2):>24.1%}")
    print(f"{'shared preprocessing (now)':<34}{stage.mean():>28.1f}{np.mean(stage > 2):>24.1%}")


def real_frames(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Real exports, and crops cut from them (kidney mask boxes, random boxes inside the sector)."""
    exports = [to_grayscale(read_frame(p)) for pattern in ("ahn_kidney/frames/images/*.png",
               "kidney_stone/images/*.png", "ahn_kidney/grades/*/*.png") for p in sorted(root.glob(pattern))]
    crops = []
    for p in sorted(root.glob("ahn_kidney/frames/images/*.png")):
        mask = np.asarray(Image.open(root / "ahn_kidney/frames/masks" / p.name).convert("L")) > 127
        ys, xs = np.nonzero(mask)
        crops.append(to_grayscale(read_frame(p))[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    rng = np.random.default_rng(0)
    for gray in exports[:26]:
        s = gray.shape[0]
        for _ in range(4):
            c = int(s * rng.uniform(0.25, 0.45))
            top, left = rng.integers(s // 4, s - c - s // 8), rng.integers(s // 4, s - c - s // 4)
            crops.append(gray[top:top + c, left:left + c])
    return exports, crops


def detect(paths: list[Path], root: Path) -> None:
    exports, crops = real_frames(root)
    groups = {"real exports": exports, "real crops": crops}
    for path in paths:
        images = pd.read_csv(path / "images.csv", dtype=str, keep_default_na=False)
        groups[path.name] = [to_grayscale(read_frame(path / p)) for p in images["path"]]
    print(f"{'frames':<28}{'n':>6}{'taken for crops':>17}")
    for name, frames in groups.items():
        print(f"{name:<28}{len(frames):>6}{np.mean([is_crop(f) for f in frames]):>17.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("make", "run", "preprocess", "detect"))
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scanner", action="store_true")
    parser.add_argument("--shared-preprocessing", action="store_true")
    parser.add_argument("--set", nargs="*", default=[], dest="sets")
    args = parser.parse_args()
    if args.mode == "make":
        make(args.paths[0], args.paths[1], args.seed, args.scanner)
    elif args.mode == "run":
        run(args.paths, args.sets, args.shared_preprocessing)
    elif args.mode == "detect":
        detect(args.paths, args.real)
    else:
        preprocess(args.paths[0])


if __name__ == "__main__":
    main()
