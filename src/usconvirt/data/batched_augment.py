"""ConVIRT's augmentations as a few batched tensor ops that never wait for the device.

kornia's pipeline (augment.py) reads random draws back to the host (`batch_prob.item()`, ColorJitter's
`.tolist()` and `.any()`): about five device-to-host synchronisations a batch, each stalling the step
until the GPU catches up. Here every draw stays on the device and the same transforms run as:

- crop, flip, rotation, translation and scale composed into one 2x3 matrix per frame, sampled once by
  `grid_sample` (bilinear); what the rotation and translation bring in from outside the crop is zero,
  as when the steps run one after the other. RandomResizedCrop's area fraction and log-uniform aspect
  ratio (3/4 to 4/3) are kept;
- brightness *multiplied* and contrast blended towards the frame's mean (torchvision's, hence ConVIRT's,
  formulas), one factor per frame, clamped to [0, 1] after each, in a random order per frame;
- the Gaussian blur as two 1-D convolutions (rows, then columns) with one sigma per frame, on the frames
  drawn with probability `blur_p`, reflect-padded as kornia's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ASPECT_RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default, torchvision's and kornia's
CROP_TRIES = 10  # torchvision's draws before falling back to the whole frame


def _uniform(n: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(n, device=like.device, dtype=torch.float32).uniform_(low, high)


class BatchedAugment(nn.Module):
    """(B, C, S, S) floats in [0, 1] -> augmented (B, C, size, size), all random draws on the device."""

    def __init__(self, size: int, *, crop_scale: tuple[float, float], hflip_p: float, rotation_deg: float,
                 translate: float, affine_scale: tuple[float, float], brightness: tuple[float, float],
                 contrast: tuple[float, float], blur_kernel: int, blur_sigma: tuple[float, float],
                 blur_p: float) -> None:
        super().__init__()
        self.size = size
        self.crop_scale, self.hflip_p, self.rotation_deg = crop_scale, hflip_p, rotation_deg
        self.translate, self.affine_scale = translate, affine_scale
        self.brightness, self.contrast = brightness, contrast
        self.blur_kernel, self.blur_sigma, self.blur_p = blur_kernel, blur_sigma, blur_p

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.geometry(images)
        out = self.colour(out)
        return self.blur(out)

    def crop_extents(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Half width and height of each crop in normalised coordinates (the frame spans 2).

        As torchvision's RandomResizedCrop: up to ten (area, aspect ratio) draws, the first that fits the
        frame kept; when none fits, the whole (square) frame.
        """
        area = _uniform(n * CROP_TRIES, *self.crop_scale, like).view(n, CROP_TRIES)
        log_ratio = _uniform(n * CROP_TRIES, math.log(ASPECT_RATIO[0]), math.log(ASPECT_RATIO[1]), like)
        ratio = torch.exp(log_ratio).view(n, CROP_TRIES)
        width, height = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
        fits = (width <= 1.0) & (height <= 1.0)
        first = fits.to(torch.uint8).argmax(1, keepdim=True)  # 0 where none fits: replaced below
        any_fit = fits.any(1)
        whole = torch.ones(n, device=like.device)
        return (torch.where(any_fit, width.gather(1, first).squeeze(1), whole),
                torch.where(any_fit, height.gather(1, first).squeeze(1), whole))

    def affine_matrices(self, n: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, 2, 3) maps from output to input coordinates in [-1, 1] (affine, then flip, then crop), and
        (n, 2, 2) (centre, half extent) of each crop in input coordinates."""
        half_w, half_h = self.crop_extents(n, like)
        centre_x = (1.0 - half_w) * _uniform(n, -1.0, 1.0, like)
        centre_y = (1.0 - half_h) * _uniform(n, -1.0, 1.0, like)
        flip = torch.where(torch.rand(n, device=like.device) < self.hflip_p, -1.0, 1.0)
        angle = torch.deg2rad(_uniform(n, -self.rotation_deg, self.rotation_deg, like))
        scale = _uniform(n, *self.affine_scale, like)
        shift = torch.stack([_uniform(n, -2 * self.translate, 2 * self.translate, like) for _ in range(2)], 1)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # inverse affine: rotate by -angle and divide by the scale; then flip x; then into the crop
        inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # (n, 2, 2)
        matrix = torch.stack([half_w * flip, half_h], 1).unsqueeze(2) * inverse
        offset = torch.stack([centre_x, centre_y], 1) - (matrix @ shift.unsqueeze(2)).squeeze(2)
        crop = torch.stack([torch.stack([centre_x, centre_y], 1), torch.stack([half_w, half_h], 1)], 1)
        return torch.cat([matrix, offset.unsqueeze(2)], 2), crop

    def geometry(self, images: torch.Tensor) -> torch.Tensor:
        n, c = images.shape[:2]
        theta, crop = self.affine_matrices(n, images)
        grid = F.affine_grid(theta.to(images.dtype), [n, c, self.size, self.size], align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # (n, S, S, 2) grid points inside their crop: the rest is what the affine step pads with zeros
        inside = ((grid - crop[:, None, None, 0]).abs() <= crop[:, None, None, 1].to(grid.dtype)).all(-1)
        return out * inside.unsqueeze(1).to(out.dtype)

    def colour(self, images: torch.Tensor) -> torch.Tensor:
        n = len(images)
        shape = (n,) + (1,) * (images.dim() - 1)
        brightness = _uniform(n, *self.brightness, images).view(shape).to(images.dtype)
        contrast = _uniform(n, *self.contrast, images).view(shape).to(images.dtype)
        brightness_first = (torch.rand(n, device=images.device) < 0.5).view(shape)
        first = torch.where(brightness_first, images * brightness, images).clamp(0.0, 1.0)
        mean = first.mean(dim=(1, 2, 3), keepdim=True)
        second = (contrast * first + (1.0 - contrast) * mean).clamp(0.0, 1.0)
        return torch.where(brightness_first, second, (second * brightness).clamp(0.0, 1.0))

    def blur(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        k = self.blur_kernel
        sigma = _uniform(n, *self.blur_sigma, images).view(n, 1)
        x = torch.arange(k, device=images.device, dtype=torch.float32) - (k - 1) / 2
        kernel = torch.exp(-(x.view(1, -1) ** 2) / (2 * sigma**2))
        kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0).to(images.dtype)  # (n*c, k)
        flat = images.reshape(1, n * c, h, w)
        pad = k // 2
        rows = F.conv2d(F.pad(flat, (pad, pad, 0, 0), mode="reflect"), kernel.view(n * c, 1, 1, k),
                        groups=n * c)
        both = F.conv2d(F.pad(rows, (0, 0, pad, pad), mode="reflect"), kernel.view(n * c, 1, k, 1),
                        groups=n * c)
        blurred = torch.rand(n, device=images.device) < self.blur_p
        return torch.where(blurred.view(n, 1, 1, 1), both.view(n, c, h, w), images)
