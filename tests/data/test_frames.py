"""The memory-mapped frame cache: built in chunks by workers, opened read-only, viewed without copies."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from usconvirt.data import frames as frames_module
from usconvirt.data import load_dataset
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import FrameDataset, FrameView, load_frames
from usconvirt.data.preprocess import preprocess_ultrasound


@pytest.fixture
def dataset(tmp_path):
    """12 frames of different content (a bright disc moving across a dark field)."""
    rng = np.random.default_rng(0)
    exams, images = [], []
    (tmp_path / "frames").mkdir()
    for i in range(12):
        yy, xx = np.mgrid[:60, :80]
        disc = (yy - 30) ** 2 + (xx - 10 - 5 * i) ** 2 < 300
        image = (rng.integers(0, 30, (60, 80)) + 200 * disc).clip(0, 255)
        Image.fromarray(image.astype(np.uint8)).save(tmp_path / "frames" / f"f{i}.png")
        images.append({"image_id": f"f{i}", "exam_id": f"e{i // 3}", "path": f"frames/f{i}.png"})
    exams = [{"exam_id": f"e{e}", "patient_id": f"p{e}", "report": "Reins normaux."} for e in range(4)]
    pd.DataFrame(exams).to_csv(tmp_path / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(tmp_path / "images.csv", index=False)
    return load_dataset(tmp_path)


def test_cache_built_in_chunks_by_workers_matches_one_process(dataset, monkeypatch):
    monkeypatch.setattr(frames_module, "CHUNK_FRAMES", 5)  # 3 chunks, the last one short
    frames, ids = load_frames(dataset, 32, workers=2)
    expected = np.stack([preprocess_ultrasound(np.asarray(Image.open(dataset.root / p)), 32).image
                         for p in dataset.images["path"]])
    assert ids == dataset.images["image_id"].tolist()
    assert np.array_equal(frames, expected) and len(np.unique(expected.reshape(12, -1), axis=0)) == 12
    assert isinstance(frames, np.memmap)
    frames[0] = 0  # copy-on-write: a stage may write into its array without touching the cache
    assert np.array_equal(load_frames(dataset, 32)[0][0], expected[0])


def test_large_selection_is_a_shared_file_not_a_copy(dataset, monkeypatch):
    monkeypatch.setattr(frames_module, "SELECTION_MIN_FRAMES", 3)
    ids = ["f9", "f1", "f4", "f4"]
    selected, _ = load_frames(dataset, 32, image_ids=ids)
    again, _ = load_frames(dataset, 32, image_ids=ids)
    everything, _ = load_frames(dataset, 32)
    assert isinstance(selected, np.memmap) and ".sel-" in str(selected.filename)
    assert selected.filename == again.filename  # written once, mapped by every caller
    assert np.array_equal(selected, everything[[9, 1, 4, 4]])
    small, _ = load_frames(dataset, 32, image_ids=ids[:2])
    assert not isinstance(small, np.memmap) and np.array_equal(small, everything[[9, 1]])


def test_lazy_view_reads_rows_without_copying(dataset):
    eager, _ = load_frames(dataset, 32, image_ids=["f7", "f2", "f7"])
    view, ids = load_frames(dataset, 32, image_ids=["f7", "f2", "f7"], lazy=True)
    assert isinstance(view, FrameView) and ids == ["f7", "f2", "f7"] and view.shape == (3, 32, 32)
    assert isinstance(view.array, np.memmap)
    assert np.array_equal(np.asarray(view), eager) and np.array_equal(view[1], eager[1])
    assert np.array_equal(np.asarray(view[1:]), eager[1:])
    payload = pickle.dumps(view)
    assert len(payload) < 2_000  # a spawned worker gets the file name and rows, not the pixels
    assert np.array_equal(np.asarray(pickle.loads(payload)), eager)
    batch = FrameDataset(view, [1, 0, 1])[0]
    assert batch[0].shape == (1, 32, 32) and batch[1] == 1 and float(batch[0].max()) <= 1.0


def test_stale_cache_is_rebuilt(dataset, tmp_path):
    load_frames(dataset, 32)
    fewer = load_dataset(tmp_path, check_files=False)
    images = fewer.images.iloc[:5]
    pd.DataFrame(images).to_csv(tmp_path / "images.csv", index=False)
    frames, ids = load_frames(load_dataset(tmp_path), 32)
    assert frames.shape == (5, 32, 32) and ids == [f"f{i}" for i in range(5)]


def test_cache_written_with_its_index_is_used_without_the_images(tmp_path):
    """A cache written outside the stage (as the DDP memory bench writes one) is read, not rebuilt."""
    ids = [f"img-{i}" for i in range(3)]
    array = np.arange(3 * 8 * 8, dtype=np.uint8).reshape(3, 8, 8)
    np.save(tmp_path / "frames_8.npy", array)
    frames_module.write_cache_index(tmp_path / "frames_8.ids.csv", ids,
                                    np.tile(np.array([0, 0, 8, 8, 0], np.int32), (3, 1)))
    no_images = Dataset(tmp_path, pd.DataFrame({"exam_id": ["e"], "patient_id": ["p"], "report": ["r"]}),
                        pd.DataFrame({"image_id": ids, "exam_id": "e", "path": ""}))
    frames, got = load_frames(no_images, 8, cache_dir=tmp_path)
    assert got == ids and np.array_equal(np.asarray(frames), array)
