"""Preprocessed frames of a dataset as one uint8 array, cached on disk so every stage reads pixels once."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from usconvirt.data.dataset import Dataset
from usconvirt.data.images import read_frame
from usconvirt.data.preprocess import preprocess_ultrasound
from usconvirt.io import atomic_path

log = logging.getLogger(__name__)


def _load_one(args: tuple[str, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    path, size = args
    out = preprocess_ultrasound(read_frame(path), size)
    return out.image, out.crop_box


def preprocess_frames(paths: list[str], size: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(N, size, size) uint8 frames and (N, 4) crop boxes, in the order of `paths`."""
    jobs = [(p, size) for p in paths]
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_load_one, jobs, chunksize=32))
    else:
        results = [_load_one(j) for j in jobs]
    frames = np.stack([r[0] for r in results]) if results else np.zeros((0, size, size), np.uint8)
    boxes = np.array([r[1] for r in results], dtype=np.int32).reshape(-1, 4)
    return frames, boxes


def load_frames(
    dataset: Dataset,
    size: int,
    *,
    image_ids: list[str] | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> tuple[np.ndarray, list[str]]:
    """Preprocessed frames for `image_ids` (default: all), with their ids, using an on-disk cache."""
    cache = Path(cache_dir) if cache_dir is not None else dataset.root / ".usconvirt-cache"
    array_file = cache / f"frames_{size}.npy"
    ids_file = cache / f"frames_{size}.ids.csv"
    all_ids = dataset.images["image_id"].tolist()
    cached = array_file.exists() and ids_file.exists()
    if cached and pd.read_csv(ids_file, dtype=str)["image_id"].tolist() == all_ids:
        frames = np.load(array_file, mmap_mode="r")
    else:
        log.info("preprocessing %d frames at %d px", len(all_ids), size)
        paths = [str(dataset.image_path(p)) for p in dataset.images["path"]]
        frames, boxes = preprocess_frames(paths, size, workers)
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(array_file) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, frames)
        with atomic_path(ids_file) as tmp:
            pd.DataFrame({"image_id": all_ids, "top": boxes[:, 0], "left": boxes[:, 1],
                          "bottom": boxes[:, 2], "right": boxes[:, 3]}).to_csv(tmp, index=False)
    if image_ids is None:
        return np.asarray(frames), all_ids
    position = {iid: i for i, iid in enumerate(all_ids)}
    return np.asarray(frames[[position[i] for i in image_ids]]), list(image_ids)


class FrameDataset(torch.utils.data.Dataset):
    """Frames as float tensors (1, S, S) in [0, 1], with optional integer targets."""

    def __init__(self, frames: np.ndarray, targets: list[int] | np.ndarray | None = None) -> None:
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.targets = None if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int):
        x = self.frames[i].unsqueeze(0).float().div_(255.0)
        return x if self.targets is None else (x, self.targets[i])
