"""One PNG grid of sample frames per cluster, so a person can name the clusters by eye."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from usconvirt.io import atomic_path


def montage(frames: np.ndarray, columns: int = 4, pad: int = 2) -> np.ndarray:
    """Tile (N, S, S) uint8 frames into one uint8 image, row-major, with white padding."""
    n, s = len(frames), frames.shape[-1]
    rows = max(1, math.ceil(n / columns))
    grid = np.full((rows * (s + pad) + pad, columns * (s + pad) + pad), 255, dtype=np.uint8)
    for i, frame in enumerate(frames):
        r, c = divmod(i, columns)
        top, left = pad + r * (s + pad), pad + c * (s + pad)
        grid[top: top + s, left: left + s] = frame
    return grid


def captioned(grid: np.ndarray, caption: str, height: int = 14) -> np.ndarray:
    """The grid under a white band carrying `caption` (the cluster number a person writes down)."""
    canvas = Image.new("L", (max(grid.shape[1], 8 * len(caption) + 4), grid.shape[0] + height), 255)
    canvas.paste(Image.fromarray(grid), (0, height))
    ImageDraw.Draw(canvas).text((2, 1), caption, fill=0)
    return np.asarray(canvas)


def write_montages(frames: np.ndarray, clusters: np.ndarray, confidence: np.ndarray, k: int,
                   out_dir: str | Path, per_cluster: int = 16, seed: int = 0,
                   mapping: dict[int, str] | None = None) -> list[Path]:
    """montages/cluster_XX.png for every cluster: a seeded sample of its frames, most confident first,
    captioned with the cluster number, its size and (when named) its organ."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for c in range(k):
        members = np.flatnonzero(clusters == c)
        if len(members) > per_cluster:
            members = rng.choice(members, per_cluster, replace=False)
        members = members[np.argsort(-confidence[members], kind="stable")]
        sample = frames[members] if len(members) else np.zeros((1, *frames.shape[1:]), np.uint8)
        path = out_dir / f"cluster_{c:02d}.png"
        with atomic_path(path) as tmp:
            organ = (mapping or {}).get(c) or "?"
            caption = f"cluster {c}: {int((clusters == c).sum())} frames, {organ}"
            Image.fromarray(captioned(montage(sample, columns=min(4, max(1, len(sample)))), caption)
                            ).save(tmp, format="PNG")
        paths.append(path)
    return paths
