"""Which k-means features and K cluster organs best, across corpora; and how robust they are on real pixels.

    OMP_NUM_THREADS=2 .venv/bin/python bench/cluster_methods.py corpora DATASET [DATASET ...] [--crops]
    OMP_NUM_THREADS=2 .venv/bin/python bench/cluster_methods.py real [--real ../shared/data/real]

corpora: for every dataset (frames at 64 px), k-means on each feature space; clusters are named by
majority vote on the exams of the mapping part (ClusterConfig.map_fraction, keyed hash of the exam id) and
scored on the held-out exams; the table gives the mean and the worst over the datasets. `--crops`
replaces every frame by a random crop of 40-60 % of its side (seeded) in memory; datasets of crop files
(bench/cluster_crops.py make) are read as the stage reads them.
real: the real kidney frames of ../shared/data/real, each also altered as another scanner would show it
(gain, gamma, blur); features are fitted on the originals, and the table gives how often an altered
frame's nearest original is its own source (retrieval@1): features that follow the scanner fail this.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.metrics import f1_score

from usconvirt.clustering.baselines import FEATURES, fit_features, kmeans
from usconvirt.clustering.frames import load_cluster_frames
from usconvirt.clustering.mapping import majority_mapping, mapping_part
from usconvirt.data.dataset import load_dataset

SIZE = 64


def held_out_scores(clusters: np.ndarray, organs: list[str], exams: list[str], k: int) -> tuple[float, float]:
    part = mapping_part(exams, 0.7)
    mapping = majority_mapping(clusters[part], list(np.array(organs)[part]), k)
    y_true = np.array(organs)[~part]
    y_pred = np.array([mapping[int(c)] for c in clusters])[~part]
    return (f1_score(y_true, y_pred, average="weighted", zero_division=0),
            f1_score(y_true == "kidney", y_pred == "kidney", zero_division=0))


def random_crops(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = []
    for f in frames:
        s = f.shape[0]
        c = int(s * rng.uniform(0.4, 0.6))
        r0, c0 = rng.integers(s // 4, s - c - s // 8 + 1), rng.integers(s // 8, s - c - s // 8 + 1)
        out.append(np.asarray(Image.fromarray(f[r0:r0 + c, c0:c0 + c]).resize((s, s), Image.BILINEAR)))
    return np.stack(out)


def corpora(paths: list[Path], crops: bool, ks: list[int]) -> None:
    results = collections.defaultdict(list)
    for path in paths:
        ds = load_dataset(path)
        ids = ds.images["image_id"].tolist()
        frames = np.asarray(load_cluster_frames(ds, SIZE, ids)[0])  # as the stage sees them
        if crops:
            frames = random_crops(frames, np.random.default_rng(0))
        images = ds.images.set_index("image_id").loc[ids]
        for kind in FEATURES:
            z = fit_features(frames, None, kind, blur_px=0.0 if kind == "raw" else 1.0)[0]
            for k in ks:
                results[(kind, k)].append(held_out_scores(kmeans(z, k)[0], images["organ"].tolist(),
                                                          images["exam_id"].tolist(), k))
        print(f"{path}: {len(ids)} frames", flush=True)
    print(f"\n{'features':<10}{'K':>4}{'weighted F1 mean':>18}{'worst':>7}{'kidney F1 mean':>16}{'worst':>7}"
          f"  ({'crops' if crops else 'full frames'}, {len(paths)} corpora, held-out exams)")
    for (kind, k), rows in results.items():
        v = np.array(rows)
        print(f"{kind:<10}{k:>4}{v[:, 0].mean():>18.3f}{v[:, 0].min():>7.3f}{v[:, 1].mean():>16.3f}"
              f"{v[:, 1].min():>7.3f}")


def scanner_change(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The frame as a different scanner setting shows it: gain, grey-map gamma, some smoothing."""
    x = frame.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.5, 1.6), 0, 1) ** rng.uniform(0.5, 2.0)
    x = ndimage.gaussian_filter(x, rng.uniform(0.0, 1.5))
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def real(root: Path) -> None:
    paths = [p for pattern in ("ahn_kidney/frames/images/*.png", "kidney_stone/images/*.png",
                               "ahn_kidney/grades/*/*.png") for p in sorted(root.glob(pattern))]
    frames = np.stack([np.asarray(Image.open(p).convert("L").resize((SIZE, SIZE), Image.BILINEAR))
                       for p in paths])
    rng = np.random.default_rng(0)
    print(f"{len(frames)} real frames; 5 scanner changes each")
    print(f"{'features':<10}{'retrieval@1':>12}")
    for kind in FEATURES:
        hits = []
        for _ in range(5):
            altered = np.stack([scanner_change(f, rng) for f in frames])
            z, z_alt = fit_features(frames, altered, kind, blur_px=0.0 if kind == "raw" else 1.0)
            nearest = ((z_alt[:, None, :] - z[None, :, :]) ** 2).sum(-1).argmin(1)
            hits.append((nearest == np.arange(len(frames))).mean())
        print(f"{kind:<10}{np.mean(hits):>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("corpora", "real"))
    parser.add_argument("datasets", nargs="*", type=Path)
    parser.add_argument("--crops", action="store_true")
    parser.add_argument("--clusters", default="24,48")
    parser.add_argument("--real", type=Path, default=Path("../shared/data/real"))
    args = parser.parse_args()
    if args.mode == "real":
        real(args.real)
    else:
        corpora(args.datasets, args.crops, [int(k) for k in args.clusters.split(",")])


if __name__ == "__main__":
    main()
