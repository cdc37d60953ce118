"""The two augmentation schemes whose views the clustering loss pulls into the same cluster.

View A is ConVIRT's scheme (geometry, brightness/contrast, blur); view B is a different scheme: a
tighter crop, gamma changes and additive noise standing in for speckle. Each is invariance the
clusters should have: organs do not change with gain, depth, probe angle or noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
from torch import nn

from usconvirt.data.augment import AugmentConfig, build_augment


@dataclass
class SpeckleViewConfig:
    """View B's settings."""

    crop_scale: tuple[float, float] = (0.35, 1.0)
    hflip_p: float = 0.5
    rotation_deg: float = 15.0
    gamma: tuple[float, float] = (0.6, 1.6)
    noise_std: float = 0.08
    noise_p: float = 0.8


def build_speckle_view(config: SpeckleViewConfig, size: int) -> nn.Module:
    """View B on (B, 1, S, S) batches in [0, 1]."""
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=config.crop_scale),
        K.RandomHorizontalFlip(p=config.hflip_p),
        K.RandomRotation(degrees=config.rotation_deg, p=1.0),
        K.RandomGamma(gamma=config.gamma, p=1.0),
        K.RandomGaussianNoise(std=config.noise_std, p=config.noise_p),
    )


def build_views(size: int, view_a: AugmentConfig | None = None,
                view_b: SpeckleViewConfig | None = None) -> tuple[nn.Module, nn.Module]:
    """The two different augmentation schemes, as kornia modules that run on the training device."""
    return (build_augment(view_a or AugmentConfig(), size),
            build_speckle_view(view_b or SpeckleViewConfig(), size))
