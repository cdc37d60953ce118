"""The clustering stage's candidates, side by side, on real organ crops and on synthetic datasets.

    python bench/cluster_candidates.py real-crops OUT [--seed 0] [--real ../shared/data/real]
    python bench/cluster_candidates.py table DATASET [DATASET ...] [--set key=value ...]

real-crops: a dataset of crops cut from the real frames of ../shared/data/real, one exam per source
frame. It holds kidney frames only, so the other class is the tissue around them: `kidney` crops are
boxes of 90-200 px (at 512) mostly inside the AHN kidney masks, or around a Kidney Stone frame's stone
(inside the kidney); `other` crops are boxes of the AHN frames' sector that touch the kidney mask at
most 5 %, and boxes of the Kidney Stone frames' sector well above the stone (abdominal wall, liver;
no mask says so). Each crop is saved at 40-96 px on its short side, as the small crops the stage meets.
table: `usconvirt cluster DATASET --out OUT --image-size 64` (ClusterConfig defaults, --set overrides)
on each dataset; per candidate its cross-validated selection score and its held-out weighted and kidney
F1 (named on the mapping exams as the chosen one is), mean (worst) over the datasets, how often it was
chosen, and the chosen one's mean; wall time per dataset.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from usconvirt.clustering import ClusterConfig
from usconvirt.config import from_dict
from usconvirt.run_layout import RunLayout

AHN = "ahn_kidney/frames"
STONE = "kidney_stone"


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def random_box(shape: tuple[int, int], rng: np.random.Generator, lo: int,
               hi: int) -> tuple[int, int, int, int]:
    h = int(rng.integers(lo, hi))
    w = int(np.clip(h * rng.uniform(0.75, 1.33), lo, shape[1] - 1))
    return int(rng.integers(0, shape[0] - h)), int(rng.integers(0, shape[1] - w)), h, w


def boxes(image: np.ndarray, rng: np.random.Generator, want: int, accept, lo: int = 90,
          hi: int = 200) -> list[tuple[int, int, int, int]]:
    """Up to `want` boxes (top, left, h, w) inside the lit sector (95 % of pixels above 8) that `accept`."""
    out = []
    for _ in range(4000):
        if len(out) == want:
            break
        t, left, h, w = random_box(image.shape, rng, lo, hi)
        if (image[t:t + h, left:left + w] > 8).mean() >= 0.95 and accept(t, left, h, w):
            out.append((t, left, h, w))
    return out


def real_crops(root: Path, out: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    if out.exists():
        shutil.rmtree(out)
    (out / "crops").mkdir(parents=True)
    rows = []

    def save(image: np.ndarray, box: tuple[int, int, int, int], exam: str, organ: str) -> None:
        t, left, h, w = box
        short = int(rng.integers(40, 97))
        crop = Image.fromarray(image[t:t + h, left:left + w]).resize((max(8, round(short * w / h)), short),
                                                                       Image.BILINEAR)
        image_id = f"{exam}_{len(rows):03d}"
        crop.save(out / "crops" / f"{image_id}.png")
        rows.append({"image_id": image_id, "exam_id": exam, "path": f"crops/{image_id}.png", "organ": organ})

    for i, path in enumerate(sorted((root / AHN / "images").glob("*.png"))):
        image, mask = gray(path), gray(root / AHN / "masks" / path.name) > 127
        exam = f"ahn{i:02d}"
        for box in boxes(image, rng, 4, lambda t, c, h, w, m=mask: m[t:t + h, c:c + w].mean() >= 0.6):
            save(image, box, exam, "kidney")
        for box in boxes(image, rng, 8, lambda t, c, h, w, m=mask: m[t:t + h, c:c + w].mean() <= 0.05):
            save(image, box, exam, "other")
    for i, path in enumerate(sorted((root / STONE / "images").glob("*.png"))):
        image = gray(path)
        rows_, cols = np.nonzero(gray(root / STONE / "masks" / path.name) > 127)
        r, c = (rows_.mean(), cols.mean()) if len(rows_) else (image.shape[0] / 2, image.shape[1] / 2)
        exam = f"stone{i:02d}"
        for box in boxes(image, rng, 3, lambda t, c0, h, w, r=r, c=c: t < r < t + h and c0 < c < c0 + w):
            save(image, box, exam, "kidney")
        for box in boxes(image, rng, 3, lambda t, c0, h, w, r=r: t + h < r - 120, lo=60, hi=140):
            save(image, box, exam, "other")
    images = pd.DataFrame(rows)
    exams = pd.DataFrame({"exam_id": images["exam_id"].unique()})
    exams["patient_id"], exams["report"] = exams["exam_id"], "Sans compte rendu."
    exams.to_csv(out / "exams.csv", index=False)
    images.to_csv(out / "images.csv", index=False)
    counts = images["organ"].value_counts().to_dict()
    print(f"{out}: {len(images)} crops of {len(exams)} real frames {counts} (seed {seed})")


def table(paths: list[Path], sets: list[str]) -> None:
    from cluster_acceptance import cluster_all_frames, overrides

    config = from_dict(ClusterConfig, {"image_size": 64, **overrides(sets)})
    rows, chosen, walls = collections.defaultdict(list), collections.Counter(), []
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="cluster_candidates_") as tmp:
            start = time.perf_counter()
            m = cluster_all_frames(RunLayout(Path(tmp), dataset=path), config)
            walls.append(time.perf_counter() - start)
        chosen[m["candidate"]] += 1
        for name, row in m["baselines"].items():
            rows[name].append([row.get("selection_score", np.nan), row.get("weighted_f1", np.nan),
                               row.get("kidney_f1", np.nan)])
        rows["chosen (the default)"].append([m["baselines"][m["candidate"]].get("selection_score", np.nan),
                                             m["weighted_f1"], m["kidney_f1"]])
        print(f"{path}: {m['frames']} frames, chose {m['candidate']}, held-out weighted {m['weighted_f1']} "
              f"kidney {m['kidney_f1']} ({m['labeled_frames']} frames), {walls[-1]:.0f} s", flush=True)
    print(f"\n{'candidate':<22}{'selection':>10}{'weighted F1 (worst)':>22}{'kidney F1 (worst)':>20}"
          f"{'chosen':>8}   ({len(paths)} datasets, held-out exams)")
    for name, values in rows.items():
        v = np.array(values, dtype=float)
        print(f"{name:<22}{np.nanmean(v[:, 0]):>10.3f}{np.nanmean(v[:, 1]):>14.3f} ({np.nanmin(v[:, 1]):.3f})"
              f"{np.nanmean(v[:, 2]):>12.3f} ({np.nanmin(v[:, 2]):.3f}){chosen.get(name, ''):>8}")
    print(f"wall: {np.mean(walls):.0f} s mean, {np.max(walls):.0f} s max per dataset")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("real-crops", "table"))
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    parser.add_argument("--set", dest="sets", nargs="*", default=[])
    args = parser.parse_args()
    if args.mode == "real-crops":
        real_crops(args.real, args.paths[0], args.seed)
    else:
        table(args.paths, args.sets)


if __name__ == "__main__":
    main()
