"""Preprocessed frames of a dataset in one memory-mapped file, so every stage, rank and loader worker
reads the same pages from the OS cache instead of holding its own copy.

The cache is `CACHE/frames_S.npy` (an (N, S, S) uint8 .npy array) and its index `CACHE/frames_S.ids.csv`
(`image_id` and crop box per row, in the dataset's image order). It is built in chunks by worker processes
that write straight into the file, so building it needs no more memory than one chunk per worker, and it
is mapped read-only (or copy-on-write), never loaded: nothing is copied until a frame is read. A build
takes a file lock, so DDP ranks that start together build it once; the others wait and then map it.

`load_frames` returns file-backed arrays (a selection of rows gets its own file, written once), so
callers that need an ndarray still share pages; `load_frames(..., lazy=True)` returns a `FrameView`
(rows of the cache, read on demand). `FrameDataset` indexes frames one at a time and works with both.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from usconvirt.data.dataset import Dataset
from usconvirt.data.images import read_frame
from usconvirt.data.preprocess import PREPROCESS_VERSION, preprocess_ultrasound
from usconvirt.data.progress import ProgressReporter
from usconvirt.data.workers import process_map
from usconvirt.io import atomic_path

log = logging.getLogger(__name__)

CHUNK_FRAMES = 256  # frames per task: enough to amortise the task, little memory per worker
COPY_CHUNK_BYTES = 64 * 2**20  # copied at a time into a selection file
SELECTION_MIN_FRAMES = 1024  # smaller selections are copied into memory: not worth a file
SELECTIONS_KEPT = 16  # selection files kept per size, the most recently used


class FrameView:
    """Rows `index` of a (memory-mapped) frame array, read on demand; it pickles as (file, rows), so a
    spawned loader worker maps the file again instead of receiving a copy of the pixels."""

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None) -> None:
        self.array = array
        self.index = np.arange(len(array)) if index is None else np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            return np.array(self.array[self.index[item]])  # one frame, copied out of the page cache
        return FrameView(self.array, self.index[item])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.asarray(self.array[self.index])
        return out.astype(dtype) if dtype is not None else out

    def __reduce__(self):
        filename = getattr(self.array, "filename", None)
        if filename is None:  # an in-memory array: nothing to re-map, pickle the rows themselves
            return FrameView, (np.asarray(self), None)
        return _reopen_view, (str(filename), self.index)


def _reopen_view(filename: str, index: np.ndarray) -> FrameView:
    return FrameView(np.load(filename, mmap_mode="r"), index)


def cache_files(cache_dir: Path, size: int) -> tuple[Path, Path]:
    """The array file and the index file of the cache at `size` px."""
    return cache_dir / f"frames_{size}.npy", cache_dir / f"frames_{size}.ids.csv"


def _fill_chunk(job: tuple[str, int, list[str], int]) -> tuple[int, list[tuple[int, int, int, int, bool]]]:
    """Preprocess one chunk of frames straight into rows start.. of the array file; their crop boxes and
    whether each was kept whole as an organ crop."""
    array_file, start, paths, size = job
    array = np.load(array_file, mmap_mode="r+")
    boxes = []
    for offset, path in enumerate(paths):
        out = preprocess_ultrasound(read_frame(path), size)
        array[start + offset] = out.image
        boxes.append((*out.crop_box, out.organ_crop))
    array.flush()
    del array
    return start, boxes


def build_frame_cache(paths: list[str], image_ids: list[str], size: int, cache_dir: Path,
                      workers: int = 1) -> None:
    """Write the cache for `paths` (index: `image_ids`) in chunks of CHUNK_FRAMES, in `workers` processes."""
    array_file, ids_file = cache_files(cache_dir, size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    boxes = np.zeros((len(paths), 5), np.int32)
    with atomic_path(array_file) as tmp:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size)).flush()
        jobs = [(str(tmp), s, paths[s:s + CHUNK_FRAMES], size) for s in range(0, len(paths), CHUNK_FRAMES)]
        with ProgressReporter(f"frame cache {size}px", len(paths), "frames") as progress, \
                process_map(workers if len(jobs) > 1 else 1) as pool_map:
            for start, chunk_boxes in pool_map(_fill_chunk, jobs):
                boxes[start:start + len(chunk_boxes)] = chunk_boxes
                progress.advance(len(chunk_boxes))
    write_cache_index(ids_file, image_ids, boxes)


def write_cache_index(ids_file: Path, image_ids: list[str], boxes: np.ndarray) -> None:
    """The cache's index: each row's image id, crop box (top, left, bottom, right), whether it was kept
    whole as an organ crop (`boxes`' 5th column), and the preprocessing version that wrote it."""
    with atomic_path(ids_file) as tmp:
        pd.DataFrame({"image_id": image_ids, "top": boxes[:, 0], "left": boxes[:, 1],
                      "bottom": boxes[:, 2], "right": boxes[:, 3], "organ_crop": boxes[:, 4].astype(bool),
                      "preprocess": PREPROCESS_VERSION}).to_csv(tmp, index=False)


@contextlib.contextmanager
def _cache_lock(cache: Path, size: int) -> Iterator[None]:
    """One writer of the cache at a time; other ranks wait here, then map what it wrote."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".frames_{size}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cache_root(dataset: Dataset, cache_dir: str | Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else dataset.root / ".usconvirt-cache"


def open_frame_cache(dataset: Dataset, size: int, *, cache_dir: str | Path | None = None,
                     workers: int = 1) -> tuple[np.ndarray, list[str]]:
    """The read-only memory-mapped (N, size, size) array of every frame and its image ids, built if
    missing or stale (its index no longer matching the dataset's images)."""
    cache = _cache_root(dataset, cache_dir)
    array_file, ids_file = cache_files(cache, size)
    all_ids = dataset.images["image_id"].tolist()
    with _cache_lock(cache, size):
        if not _cache_matches(array_file, ids_file, all_ids, size):
            log.info("preprocessing %d frames at %d px into %s", len(all_ids), size, array_file)
            for old in cache.glob(f"frames_{size}.sel-*.npy"):
                old.unlink()
            paths = [str(dataset.image_path(p)) for p in dataset.images["path"]]
            build_frame_cache(paths, all_ids, size, cache, workers)
    return np.load(array_file, mmap_mode="r"), all_ids


def _cache_matches(array_file: Path, ids_file: Path, ids: list[str], size: int) -> bool:
    if not (array_file.exists() and ids_file.exists()):
        return False
    shape = np.load(array_file, mmap_mode="r").shape
    if shape != (len(ids), size, size):
        return False
    index = pd.read_csv(ids_file, dtype=str)
    # a cache written by an older preprocessing chain (no version column, or another one) is rebuilt
    return ("preprocess" in index.columns and index["preprocess"].eq(str(PREPROCESS_VERSION)).all()
            and index["image_id"].tolist() == ids)


def selection_map(cache: Path, size: int, frames: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows `rows` of the cache as their own memory-mapped file (written once, shared by every process
    that asks for the same rows), mapped copy-on-write: writable, but writes stay in the process."""
    array_file = cache_files(cache, size)[0]
    key = f"{array_file.stat().st_mtime_ns}:{size}:".encode() + rows.tobytes()
    path = cache / f"frames_{size}.sel-{hashlib.sha256(key).hexdigest()[:16]}.npy"
    with _cache_lock(cache, size):
        if path.exists():
            os.utime(path)  # recently used: kept by the clean-up below
        else:
            with atomic_path(path) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(rows), size, size))
                step = max(1, COPY_CHUNK_BYTES // (size * size))
                for start in range(0, len(rows), step):
                    out[start:start + step] = frames[rows[start:start + step]]
                out.flush()
                del out
            for old in sorted(cache.glob(f"frames_{size}.sel-*.npy"), key=lambda p: p.stat().st_mtime)[
                    :-SELECTIONS_KEPT]:
                old.unlink()  # a process still mapping it keeps its pages; the name goes
        return np.load(path, mmap_mode="c")


def load_frames(
    dataset: Dataset,
    size: int,
    *,
    image_ids: list[str] | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    lazy: bool = False,
) -> tuple[np.ndarray | FrameView, list[str]]:
    """Preprocessed frames for `image_ids` (default: all), with their ids, from the memory-mapped cache.

    `lazy=False`: an (N, S, S) array backed by a file, mapped copy-on-write (all frames: the cache
    itself; a selection of at least SELECTION_MIN_FRAMES: its own file beside the cache, written once),
    so ranks and loader workers share its pages; smaller selections are plain in-memory copies.
    `lazy=True`: a `FrameView` of the cache, nothing written or copied; index it one frame at a time.
    """
    frames, all_ids = open_frame_cache(dataset, size, cache_dir=cache_dir, workers=max(1, workers))
    if image_ids is None:
        rows, ids = None, all_ids
    else:
        position = {iid: i for i, iid in enumerate(all_ids)}
        rows, ids = np.array([position[i] for i in image_ids], dtype=np.int64), list(image_ids)
    if lazy:
        return FrameView(frames, rows), ids
    if rows is None:
        return np.load(frames.filename, mmap_mode="c"), ids
    if len(rows) < SELECTION_MIN_FRAMES:
        return np.asarray(frames[rows]), ids
    return selection_map(_cache_root(dataset, cache_dir), size, frames, rows), ids


def organ_crop_flags(dataset: Dataset, size: int, image_ids: list[str]) -> np.ndarray:
    """Which of `image_ids` the dataset's cache at `size` px holds as organ crops (after load_frames)."""
    index = pd.read_csv(cache_files(_cache_root(dataset, None), size)[1], dtype={"image_id": str})
    return index.set_index("image_id").loc[image_ids, "organ_crop"].astype(bool).to_numpy()


class FrameDataset(torch.utils.data.Dataset):
    """Frames as float tensors (1, S, S) in [0, 1], with optional integer targets; frames (an array, the
    memory map or a FrameView) are read one at a time, never copied whole."""

    def __init__(self, frames: np.ndarray | FrameView, targets: list[int] | np.ndarray | None = None) -> None:
        self.frames = frames
        self.targets = None if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int):
        x = torch.from_numpy(np.array(self.frames[i])).unsqueeze(0).float().div_(255.0)
        return x if self.targets is None else (x, self.targets[i])
