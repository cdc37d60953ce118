"""ConVIRT's augmentation semantics: brightness multiplies, blur scales with the frame size."""

from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import pytest
import torch

from usconvirt.data import load_dataset
from usconvirt.data.augment import AugmentConfig, augment_batch, blur_for_size, build_augment
from usconvirt.data.frames import load_frames
from usconvirt.synth import SynthConfig, generate_corpus


def _colour_step(augment) -> torch.nn.Module:
    return next(m for m in augment.children() if isinstance(m, K.ColorJitter))


def test_brightness_multiplies_each_frame_by_one_factor() -> None:
    jitter = K.ColorJitter(brightness=AugmentConfig().brightness, p=1.0)
    frames = torch.rand(16, 1, 24, 24) * 0.5 + 0.05  # below 1 / 1.4: no clamping
    ratio = (jitter(frames) / frames).flatten(1)
    assert torch.allclose(ratio.std(1), torch.zeros(16), atol=1e-5)  # one factor per frame
    assert ratio.mean(1).min() >= 0.6 - 1e-5 and ratio.mean(1).max() <= 1.4 + 1e-5


def test_the_pipeline_uses_the_multiplicative_jitter() -> None:
    step = _colour_step(build_augment(AugmentConfig(), 32))
    assert type(step) is K.ColorJitter  # not ColorJiggle, whose brightness is added


def test_blur_scales_with_the_image_size() -> None:
    assert blur_for_size((0.1, 3.0), 224) == (19, (0.1, 3.0))
    kernel, (low, high) = blur_for_size((0.1, 3.0), 64)
    assert high == pytest.approx(3.0 * 64 / 224) and low == pytest.approx(0.1 * 64 / 224)
    assert kernel % 2 == 1 and kernel >= 2 * 3 * high


@pytest.fixture(scope="module")
def kidney_frames(tmp_path_factory) -> torch.Tensor:
    root = generate_corpus(tmp_path_factory.mktemp("corpus") / "ds",
                           SynthConfig(exams=6, seed=0, image_size=64))
    dataset = load_dataset(root)
    ids = dataset.images.loc[dataset.images["organ"] == "kidney", "image_id"].tolist()
    frames, _ = load_frames(dataset, 64, image_ids=ids)
    return torch.from_numpy(frames).unsqueeze(1).float().div(255.0)


def _nearly_black_share(augment, frames: torch.Tensor, rounds: int = 10) -> float:
    """Share of augmented frames whose mean fell below a quarter of the original frame's mean."""
    before = frames.mean((1, 2, 3))
    dark = [augment_batch(augment, frames).mean((1, 2, 3)) < 0.25 * before for _ in range(rounds)]
    return float(torch.cat(dark).float().mean())


@pytest.mark.parametrize("backend", ["kornia", "batched"])
def test_fewer_than_one_percent_of_augmented_kidney_frames_are_nearly_black(kidney_frames, backend) -> None:
    torch.manual_seed(0)
    assert _nearly_black_share(build_augment(AugmentConfig(backend=backend), 64), kidney_frames) < 0.01
    additive = K.ColorJiggle(brightness=AugmentConfig().brightness, contrast=AugmentConfig().contrast, p=1.0)
    assert _nearly_black_share(additive, kidney_frames) > 0.02  # the old semantics this test guards against


@pytest.mark.parametrize("backend", ["kornia", "batched"])
def test_augmentation_keeps_shape_and_range(kidney_frames, backend) -> None:
    out = augment_batch(build_augment(AugmentConfig(backend=backend), 64), kidney_frames[:8])
    assert out.shape == kidney_frames[:8].shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(out, kidney_frames[:8])
    assert np.isclose(float(build_augment(AugmentConfig(enabled=False), 64)(kidney_frames[:2]).sum()),
                      float(kidney_frames[:2].sum()))
