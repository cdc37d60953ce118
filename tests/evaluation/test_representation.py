"""Representation quality: probe, kNN, silhouette, t-SNE and the whole measure on a tiny dataset."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import silhouette_score
from tiny_kidneys import PARTS, SIZE, make_dataset

from usconvirt.errors import InputError
from usconvirt.evaluation.representation import (
    RepresentationConfig,
    encode_frames,
    knn_accuracy,
    linear_probe,
    normal_abnormal_silhouette,
    representation_quality,
    tsne_embedding,
)
from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder, save_image_encoder


def _blobs(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, 8))
    x[:, 0] += shift * (2 * y - 1)
    return x, y


def test_linear_probe_finds_a_separable_direction_and_not_noise():
    x, y = _blobs(60, shift=4.0, seed=1)
    tx, ty = _blobs(40, shift=4.0, seed=2)
    assert linear_probe(x, y, tx, ty)["probe_accuracy"] == 1.0
    noise = linear_probe(x, y, tx, np.random.default_rng(3).permutation(ty))
    assert noise["probe_accuracy"] < 0.8


def test_knn_accuracy_counts_the_neighbour_vote():
    train = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    labels = np.array([0, 0, 1, 1])
    test = np.array([[1.0, 0.05], [0.05, 1.0], [1.0, 0.0]])
    assert knn_accuracy(train, labels, test, np.array([0, 1, 0]), k=1) == 1.0
    assert knn_accuracy(train, labels, test, np.array([0, 1, 1]), k=1) == pytest.approx(2 / 3)


def test_silhouette_is_sklearns_cosine_score_and_nan_for_one_class():
    x, y = _blobs(30, shift=3.0, seed=4)
    assert normal_abnormal_silhouette(x, y) == pytest.approx(silhouette_score(x, y, metric="cosine"))
    assert normal_abnormal_silhouette(x, y) > 0.2
    assert math.isnan(normal_abnormal_silhouette(x, np.zeros(30, int)))


def test_tsne_is_two_dimensional_and_seeded():
    x, _ = _blobs(24, shift=3.0, seed=5)
    a, b = tsne_embedding(x, seed=7), tsne_embedding(x, seed=7)
    assert a.shape == (24, 2)
    np.testing.assert_allclose(a, b)


def test_encode_frames_batches_without_changing_features():
    torch.manual_seed(0)
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny")).train()
    frames = np.random.default_rng(0).integers(0, 255, (5, SIZE, SIZE), dtype=np.uint8)
    one, many = encode_frames(encoder, frames, batch_size=2), encode_frames(encoder, frames, batch_size=5)
    assert one.shape == (5, encoder.out_dim)
    np.testing.assert_allclose(one, many, atol=1e-5)  # eval mode: batch-norm statistics are frozen
    assert encoder.training  # the caller's mode is restored


def test_representation_quality_writes_table_json_and_side_by_side_tsne(tmp_path):
    dataset, split = make_dataset(tmp_path / "data")
    torch.manual_seed(1)
    saved = save_image_encoder(create_image_encoder(ImageEncoderConfig(arch="tiny")), tmp_path / "enc")
    config = RepresentationConfig(image_size=SIZE, arch="tiny", seed=0, cache_dir=str(tmp_path / "cache"))
    out = tmp_path / "evaluation"
    results = representation_quality(dataset, split, {"random": "random", "saved": str(saved)}, out, config)

    assert list(results) == ["random", "saved"]
    for scores in results.values():
        assert scores["n_train"] == 2 * PARTS["train"] and scores["n_test"] == 2 * PARTS["test"]
        assert 0.0 <= scores["probe_accuracy"] <= 1.0 and -1.0 <= scores["silhouette"] <= 1.0
    # The planted cyst is visible to any conv net's pooled features: the probe must pick it up.
    assert results["random"]["probe_accuracy"] >= 0.9
    table = pd.read_csv(out / "representation.csv")
    assert table["init"].tolist() == ["random", "saved"]
    assert json.loads((out / "representation.json").read_text())["saved"]["n_test"] == 2 * PARTS["test"]
    with Image.open(out / "tsne.png") as png:
        assert png.width > 1.5 * png.height  # two panels side by side


def test_representation_quality_rejects_a_test_part_without_abnormal_frames(tmp_path):
    dataset, split = make_dataset(tmp_path / "data")
    images = dataset.images.copy()
    images.loc[images["exam_id"].str.startswith("test"), "label"] = "normal"
    one_class = type(dataset)(root=dataset.root, exams=dataset.exams, images=images)
    with pytest.raises(InputError, match="test part needs normal and abnormal"):
        representation_quality(one_class, split, {"random": "random"}, tmp_path / "out",
                               RepresentationConfig(image_size=SIZE, arch="tiny"))
