"""Grad-CAM and prompt maps: shapes, batching, the projection's commutation, and a map that finds a blob."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usconvirt.bundle.heatmaps import ClassActivationMaps, similarity_maps, to_input
from usconvirt.bundle.load import load_bundle
from usconvirt.models.classifier import KidneyClassifier
from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder

SIZE = 64
BLOB_RADIUS = 6


def _classifier(seed: int = 0) -> KidneyClassifier:
    torch.manual_seed(seed)
    return KidneyClassifier(create_image_encoder(ImageEncoderConfig(arch="tiny"))).eval()


def test_maps_have_the_frames_shape_are_finite_and_batching_changes_nothing():
    cam = ClassActivationMaps(_classifier(), SIZE)
    frames = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE), dtype=np.uint8)
    together = cam(frames)
    one_by_one = np.concatenate([cam(frames[i:i + 1]) for i in range(len(frames))])
    assert together.shape == (6, SIZE, SIZE) and together.dtype == np.float32
    assert np.isfinite(together).all() and (together >= 0).all() and together.max() > 0
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-6 * together.max())
    assert cam(frames[:0]).shape == (0, SIZE, SIZE)


def _blob_frames(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Speckle frames; the abnormal half holds a bright disc somewhere. Returns frames, labels, centres."""
    frames = rng.normal(90, 25, (n, SIZE, SIZE)).clip(0, 255)
    labels = np.arange(n) % 2
    centres = rng.integers(BLOB_RADIUS + 2, SIZE - BLOB_RADIUS - 2, (n, 2))
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in np.flatnonzero(labels):
        disc = (yy - centres[i, 0]) ** 2 + (xx - centres[i, 1]) ** 2 <= BLOB_RADIUS ** 2
        frames[i][disc] = 250
    return frames.astype(np.uint8), labels, centres


def test_the_map_of_a_classifier_trained_on_bright_blobs_peaks_on_the_blob():
    rng = np.random.default_rng(0)
    frames, labels, _ = _blob_frames(128, rng)
    model = _classifier(1).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = to_input(frames, torch.device("cpu")), torch.from_numpy(labels)
    for _ in range(6):
        for batch in torch.randperm(len(x)).split(32):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    model.eval()
    test, test_labels, centres = _blob_frames(24, rng)
    with torch.no_grad():
        assert (model(to_input(test, torch.device("cpu"))).argmax(1).numpy() == test_labels).mean() >= 0.9
    abnormal = np.flatnonzero(test_labels)
    maps = ClassActivationMaps(model, SIZE)(test[abnormal])
    peaks = np.array(np.unravel_index(maps.reshape(len(maps), -1).argmax(1), (SIZE, SIZE))).T
    distance = np.linalg.norm(peaks - centres[abnormal], axis=1)
    assert (distance <= 2 * BLOB_RADIUS).mean() >= 0.8, distance


def test_prompt_maps_average_to_the_frame_embedding(exported):
    bundle = load_bundle(exported["bundle"])
    model = bundle.text_model
    size = model.image_size
    frames = np.random.default_rng(1).integers(0, 256, (3, size, size), dtype=np.uint8)
    prompts = ["dilatation des cavités pyélocalicielles", "rein normal"]
    maps, scores = bundle.prompt_maps(frames, prompts)
    assert maps.shape == (2, 3, model.image_size, model.image_size) and np.isfinite(maps).all()
    assert np.abs(maps).max() <= 1 + 1e-5
    with torch.no_grad():
        expected = model.encode_texts(prompts) @ model.encode_images(to_input(frames, bundle.device)).T
    np.testing.assert_allclose(scores, expected.numpy(), atol=1e-5)
    single = bundle.similarity_map(list(frames), prompts[0])  # raw frames, prepared as predict does
    assert single.shape == (3, model.image_size, model.image_size)
    direct, _ = similarity_maps(model, frames, bundle.embed_prompts(prompts[:1]))
    assert np.isfinite(direct).all()


def test_a_bundle_without_text_model_refuses_prompts(exported):
    bundle = load_bundle(exported["bundle"])
    bundle.text_model = None
    with pytest.raises(Exception, match="with-text"):
        bundle.similarity_map([np.zeros((40, 40), np.uint8)], "rein")
