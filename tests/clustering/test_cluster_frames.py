import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from usconvirt.clustering import ClusterConfig, run_clustering
from usconvirt.clustering.frames import load_cluster_frames
from usconvirt.data.dataset import load_dataset
from usconvirt.data.preprocess import (
    clean_frame,
    clean_sector,
    is_crop,
    preprocess_ultrasound,
    resize_crop,
    resize_pad,
)


def fan_export(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """A convex-probe export: speckled fan on black, with white header text in a corner."""
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).pieslice([-size // 2, -size // 3, 3 * size // 2, size], 55, 125, fill=255)
    img = np.where(np.asarray(mask) > 0, rng.integers(30, 200, (size, size)), 0).astype(np.uint8)
    img[2:6, 2:20] = 255
    return img


def tissue_crop(rng: np.random.Generator, shape=(40, 56)) -> np.ndarray:
    """An organ crop: speckle up to the border, an anechoic lumen touching the left edge."""
    img = rng.integers(60, 180, shape).astype(np.uint8)
    img[5:30, :18] = rng.integers(0, 6, (25, 18))
    return img


def test_exports_and_crops_are_told_apart():
    rng = np.random.default_rng(0)
    assert not is_crop(fan_export(rng))
    assert not is_crop(fan_export(rng) // 2 + 20)  # an export whose black is not 0
    assert is_crop(tissue_crop(rng))
    assert is_crop(rng.integers(0, 255, (24, 24)).astype(np.uint8))


def test_a_crop_is_kept_whole_where_the_sector_search_would_cut_it():
    crop = tissue_crop(np.random.default_rng(1))
    cleaned, box = clean_frame(crop)  # as ingest writes it
    np.testing.assert_array_equal(cleaned, crop)
    assert box == (0, 0, *crop.shape)
    image = preprocess_ultrasound(crop, 32).image
    np.testing.assert_array_equal(image, resize_crop(crop, 32))
    assert (image == 0).mean() < 0.05  # no black bars, no masked tissue
    before = resize_pad(clean_sector(crop)[0], 32)
    assert (before == 0).mean() > 0.2  # what the crop suffered before


def test_exports_still_go_through_the_sector_crop():
    frame = fan_export(np.random.default_rng(2))
    cleaned, box = clean_frame(frame)
    np.testing.assert_array_equal(cleaned, clean_sector(frame)[0])
    np.testing.assert_array_equal(preprocess_ultrasound(frame, 32).image, resize_pad(cleaned, 32))


def crops_dataset(root, n_exams=18):
    """Crops of three 'organs' of different size and aspect, saved as PNG and JPEG."""
    rng = np.random.default_rng(3)
    (root / "crops").mkdir(parents=True)
    exams, images = [], []
    for e in range(n_exams):
        exams.append({"exam_id": f"e{e}", "patient_id": f"p{e}", "report": "Reins normaux."})
        for i, (organ, level) in enumerate((("kidney", 170), ("liver", 100), ("bladder", 10))):
            h, w = rng.integers(24, 64, 2)
            img = np.clip(rng.normal(level, 25, (h, w)), 0, 255).astype(np.uint8)
            img[:3], img[-3:] = 120, 120  # tissue above and below every organ
            path = f"crops/e{e}_{i}.{'jpg' if i % 2 else 'png'}"
            Image.fromarray(img).save(root / path)
            images.append({"image_id": f"e{e}_{i}", "exam_id": f"e{e}", "path": path, "organ": organ})
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    return root


def test_stage_clusters_crops_resized_only(tmp_path):
    root = crops_dataset(tmp_path / "ds")
    ds = load_dataset(root)
    frames, crops = load_cluster_frames(ds, 32, ds.images["image_id"].tolist())
    assert crops == len(ds.images) and frames.shape == (len(ds.images), 32, 32)
    metrics = run_clustering(root, tmp_path / "out", ClusterConfig(clusters=6, image_size=32))
    assert metrics["crop_frames"] == len(ds.images)
    assert metrics["kidney_f1"] == 1.0


def test_crops_are_counted_among_exports(tmp_path):
    root = tmp_path / "ds"
    (root / "frames").mkdir(parents=True)
    rng = np.random.default_rng(4)
    for i in range(3):
        Image.fromarray(tissue_crop(rng) if i == 1 else fan_export(rng)).save(root / "frames" / f"f{i}.png")
    pd.DataFrame([{"exam_id": "e0", "patient_id": "p0", "report": "Reins normaux."}]).to_csv(
        root / "exams.csv", index=False)
    rows = [{"image_id": f"f{i}", "exam_id": "e0", "path": f"frames/f{i}.png"} for i in range(3)]
    pd.DataFrame(rows).to_csv(root / "images.csv", index=False)
    ds = load_dataset(root)
    frames, crops = load_cluster_frames(ds, 32, ["f0", "f1", "f2"])
    assert crops == 1 and frames.shape == (3, 32, 32)
    assert (root / ".usconvirt-cache" / "frames_32.npy").exists()


def test_a_frame_cache_from_an_older_preprocessing_is_rebuilt(tmp_path):
    root = crops_dataset(tmp_path / "ds", n_exams=2)
    ds = load_dataset(root)
    ids = ds.images["image_id"].tolist()
    fresh, _ = load_cluster_frames(ds, 32, ids)
    index_file = root / ".usconvirt-cache" / "frames_32.ids.csv"
    index = pd.read_csv(index_file)
    array = np.load(root / ".usconvirt-cache" / "frames_32.npy", mmap_mode="r+")
    array[:] = 0  # what an older chain wrote, without a version
    array.flush()
    del array
    index.drop(columns="preprocess").to_csv(index_file, index=False)
    again, _ = load_cluster_frames(ds, 32, ids)
    np.testing.assert_array_equal(again, fresh)


def test_predict_time_preprocessing_keeps_crops_whole_too():
    from usconvirt.bundle.preprocessing import prepare

    rng = np.random.default_rng(5)
    for frame in (tissue_crop(rng), fan_export(rng)):
        expected = preprocess_ultrasound(clean_frame(frame)[0], 32).image  # ingest, then training
        np.testing.assert_array_equal(prepare(frame, (32,), dicom=True)[32], expected)
