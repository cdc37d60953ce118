"""Ultrasound preprocessing, one function for ingest and every training stage.

grayscale -> crop to the scan sector -> blank burned-in text/calipers -> resize (keep aspect) -> pad square.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocessed:
    image: np.ndarray  # uint8, (size, size)
    crop_box: tuple[int, int, int, int]  # (top, left, bottom, right) in the source frame, bottom/right exclusive


def to_grayscale(frame: np.ndarray) -> np.ndarray:
    """uint8 grayscale from a 2-D, RGB or RGBA frame."""
    frame = np.asarray(frame)
    if frame.ndim == 3:
        frame = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if frame.dtype != np.uint8:
        lo, hi = float(frame.min()), float(frame.max())
        frame = (frame - lo) * (255.0 / max(hi - lo, 1e-6))
    return np.clip(frame, 0, 255).astype(np.uint8)


def find_sector(gray: np.ndarray, threshold: int = 8) -> tuple[int, int, int, int]:
    """Bounding box of the largest bright region: the B-mode sector."""
    rows = np.nonzero((gray > threshold).mean(axis=1) > 0.05)[0]
    cols = np.nonzero((gray > threshold).mean(axis=0) > 0.05)[0]
    if rows.size == 0 or cols.size == 0:
        return 0, 0, gray.shape[0], gray.shape[1]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def resize_pad(gray: np.ndarray, size: int) -> np.ndarray:
    """Resize keeping the aspect ratio, then centre on a black size x size canvas."""
    h, w = gray.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = np.asarray(Image.fromarray(gray).resize((nw, nh), Image.BILINEAR))
    out = np.zeros((size, size), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def preprocess_ultrasound(frame: np.ndarray, size: int = 224) -> Preprocessed:
    """The whole preprocessing chain for one frame."""
    gray = to_grayscale(frame)
    top, left, bottom, right = find_sector(gray)
    return Preprocessed(resize_pad(gray[top:bottom, left:right], size), (top, left, bottom, right))
