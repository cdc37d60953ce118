"""The two augmentation schemes whose views the clustering loss pulls into the same cluster.

View A is ConVIRT's scheme (geometry, brightness/contrast, blur); view B is a different scheme: a
tighter crop, gamma changes and additive noise standing in for speckle. Each is invariance the
clusters should have: organs do not change with gain, depth, probe angle or noise.
"""

from __future__ import annotations

import kornia.augmentation as K
from torch import nn

from usconvirt.data.augment import AugmentConfig, build_augment


def speckle_view(size: int) -> nn.Module:
    """View B on (B, 1, S, S) batches in [0, 1]."""
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=(0.35, 1.0)),
        K.RandomHorizontalFlip(p=0.5),
        K.RandomRotation(degrees=15.0, p=1.0),
        K.RandomGamma(gamma=(0.6, 1.6), p=1.0),
        K.RandomGaussianNoise(std=0.08, p=0.8),
    )


def build_views(size: int) -> tuple[nn.Module, nn.Module]:
    """The two different augmentation schemes, as kornia modules that run on the training device."""
    return build_augment(AugmentConfig(), size), speckle_view(size)
