"""ConVIRT's image augmentations as batched tensor ops on the training device (kornia)."""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn


@dataclass
class AugmentConfig:
    """ConVIRT's published settings (PAPER.md Part 2)."""

    crop_scale: tuple[float, float] = (0.6, 1.0)  # area fraction, not aspect ratio
    hflip_p: float = 0.5
    rotation_deg: float = 20.0
    translate: float = 0.1
    affine_scale: tuple[float, float] = (0.95, 1.05)
    brightness: tuple[float, float] = (0.6, 1.4)
    contrast: tuple[float, float] = (0.6, 1.4)
    blur_sigma: tuple[float, float] = (0.1, 3.0)
    blur_p: float = 0.5
    enabled: bool = True


def build_augment(config: AugmentConfig, size: int) -> nn.Module:
    """A module mapping a (B, C, S, S) float batch in [0, 1] to an augmented batch of the same shape."""
    if not config.enabled:
        return nn.Identity()
    kernel = max(3, (size // 10) | 1)  # odd kernel wide enough for sigma up to ~3 px at small sizes
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=config.crop_scale),
        K.RandomHorizontalFlip(p=config.hflip_p),
        K.RandomAffine(degrees=config.rotation_deg, translate=(config.translate, config.translate),
                       scale=config.affine_scale, p=1.0),
        K.ColorJiggle(brightness=config.brightness, contrast=config.contrast, p=1.0),
        K.RandomGaussianBlur((kernel, kernel), sigma=config.blur_sigma, p=config.blur_p),
    )


def augment_batch(augment: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Apply `augment` without tracking gradients and clamp to [0, 1]."""
    with torch.no_grad():
        return augment(images).clamp_(0.0, 1.0)
