"""The batched augmentations do what kornia's pipeline does, transform by transform."""

from __future__ import annotations

import dataclasses

import kornia
import torch

from usconvirt.data.augment import AugmentConfig, augment_batch, blur_for_size, build_augment
from usconvirt.training.fast_step import HostReads

STILL = AugmentConfig(crop_scale=(1.0, 1.0), hflip_p=0.0, rotation_deg=0.0, translate=0.0,
                      affine_scale=(1.0, 1.0), brightness=(1.0, 1.0), contrast=(1.0, 1.0), blur_p=0.0,
                      backend="batched")


def _batched(**changes):
    return build_augment(dataclasses.replace(STILL, **changes), 32)


def test_no_transform_returns_the_frames_and_a_flip_mirrors_them() -> None:
    frames = torch.rand(6, 1, 32, 32)
    assert torch.allclose(_batched()(frames), frames, atol=1e-5)
    assert torch.allclose(_batched(hflip_p=1.0)(frames), frames.flip(-1), atol=1e-5)


def test_brightness_multiplies_each_frame_by_one_factor() -> None:
    torch.manual_seed(0)
    frames = torch.rand(16, 1, 24, 24) * 0.5 + 0.05  # below 1 / 1.4: no clamping
    ratio = (build_augment(dataclasses.replace(STILL, brightness=(0.6, 1.4)), 24)(frames) / frames).flatten(1)
    assert torch.allclose(ratio.std(1), torch.zeros(16), atol=1e-4)
    assert ratio.mean(1).min() >= 0.6 - 1e-4 and ratio.mean(1).max() <= 1.4 + 1e-4
    assert ratio.mean(1).std() > 0.05  # a factor per frame, not one for the batch


def test_contrast_blends_towards_the_frame_mean() -> None:
    frames = torch.rand(8, 1, 32, 32) * 0.5 + 0.25
    out = _batched(contrast=(0.5, 0.5))(frames)
    mean = frames.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(out, 0.5 * frames + 0.5 * mean, atol=1e-5)


def test_blur_matches_a_gaussian_blur_of_the_drawn_sigma() -> None:
    frames = torch.rand(4, 1, 32, 32)
    kernel, _ = blur_for_size((3.0, 3.0), 32)
    out = _batched(blur_sigma=(3.0, 3.0), blur_p=1.0)(frames)
    sigma = 3.0 * 32 / 224
    expected = kornia.filters.gaussian_blur2d(frames, (kernel, kernel), (sigma, sigma), border_type="reflect")
    assert torch.allclose(out, expected, atol=1e-5)


def test_geometry_brings_in_as_much_black_border_as_kornia() -> None:
    torch.manual_seed(0)
    grey = torch.full((512, 1, 32, 32), 0.5)
    geometry_only = dataclasses.replace(AugmentConfig(), brightness=(1.0, 1.0), contrast=(1.0, 1.0),
                                        blur_p=0.0)
    shares = [float((augment_batch(build_augment(dataclasses.replace(geometry_only, backend=b), 32), grey)
                     < 0.25).float().mean()) for b in ("kornia", "batched")]
    assert 0.05 < shares[1] < 0.2 and abs(shares[0] - shares[1]) < 0.02


def test_batched_augmentations_read_nothing_back_to_the_host() -> None:
    frames = torch.rand(8, 1, 32, 32)
    reads = {}
    for backend in ("kornia", "batched"):
        augment = build_augment(dataclasses.replace(AugmentConfig(), backend=backend), 32)
        with HostReads() as counter:
            augment_batch(augment, frames)
        reads[backend] = counter.count
    assert reads["batched"] == 0
    assert reads["kornia"] > 0  # the control: kornia's draws are read back (a GPU sync each)
