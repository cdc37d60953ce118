"""ConVIRT's image augmentations as batched tensor ops on the training device (kornia).

ConVIRT (Zhang et al., arXiv 2010.00747) uses torchvision's transforms: `ColorJitter` *multiplies*
brightness by a factor in [0.6, 1.4] and blends contrast towards the image mean, and its Gaussian blur
(sigma 0.1-3 px) is meant for 224 px inputs. kornia's `ColorJitter` follows torchvision's formulas
(`ColorJiggle`, its older sibling, *adds* the brightness shift, which blackens dark ultrasound frames),
and the blur's sigma and kernel are scaled here with the image size, so a 64 px frame is blurred as
much, relative to its size, as a 224 px one.
"""

from __future__ import annotations

import math

import kornia.augmentation as K
import torch
from torch import nn

from usconvirt.data.batched_augment import BatchedAugment
from usconvirt.data.config import AugmentConfig

REFERENCE_SIZE = 224  # the input size ConVIRT's blur sigma is given for


def blur_for_size(sigma: tuple[float, float], size: int) -> tuple[int, tuple[float, float]]:
    """(odd kernel, sigma range) at `size` px for a sigma range given at 224 px; kernel spans +-3 sigma."""
    scale = size / REFERENCE_SIZE
    low, high = sigma[0] * scale, sigma[1] * scale
    kernel = 2 * math.ceil(3.0 * high) + 1
    return max(3, kernel), (low, high)


def build_augment(config: AugmentConfig, size: int) -> nn.Module:
    """A module mapping a (B, C, S, S) float batch in [0, 1] to an augmented batch of the same shape."""
    if not config.enabled:
        return nn.Identity()
    kernel, sigma = blur_for_size(config.blur_sigma, size)
    if config.backend == "batched":
        return BatchedAugment(size, crop_scale=config.crop_scale, hflip_p=config.hflip_p,
                              rotation_deg=config.rotation_deg, translate=config.translate,
                              affine_scale=config.affine_scale, brightness=config.brightness,
                              contrast=config.contrast, blur_kernel=kernel, blur_sigma=sigma,
                              blur_p=config.blur_p)
    return K.AugmentationSequential(
        K.RandomResizedCrop((size, size), scale=config.crop_scale),
        K.RandomHorizontalFlip(p=config.hflip_p),
        K.RandomAffine(degrees=config.rotation_deg, translate=(config.translate, config.translate),
                       scale=config.affine_scale, p=1.0),
        K.ColorJitter(brightness=config.brightness, contrast=config.contrast, p=1.0),
        K.RandomGaussianBlur((kernel, kernel), sigma=sigma, p=config.blur_p),
    )


def augment_batch(augment: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Apply `augment` without tracking gradients and clamp to [0, 1]."""
    with torch.no_grad():
        return augment(images).clamp_(0.0, 1.0)
