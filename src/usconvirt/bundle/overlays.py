"""Heat maps as files: an overlay PNG (the map over the preprocessed frame, a colour bar) and the array.

Drawn with numpy and Pillow from a matplotlib colour map's table, not a matplotlib figure: a figure
costs tens of milliseconds a frame, and predict writes one for every kidney frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

COLOURS = (colormaps["inferno"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)
ALPHA = 0.45  # the map's weight over the frame: the anatomy stays readable under it
BAR_WIDTH = 10
LABEL_WIDTH = 40  # room for the bar's tick labels ("-0.16")


def scaled(heat: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map values to 0..255 colour indices between `low` and `high` (a flat map is all 0)."""
    span = high - low
    if not np.isfinite(span) or span <= 0:
        return np.zeros(heat.shape, np.uint8)
    return (np.clip((heat - low) / span, 0.0, 1.0) * 255).astype(np.uint8)


def overlay_image(frame: np.ndarray, heat: np.ndarray, low: float, high: float) -> Image.Image:
    """RGB image: the frame blended with the coloured map, then a vertical colour bar from low to high."""
    size = frame.shape[0]
    gray = np.repeat(frame[..., None].astype(np.float32), 3, axis=2)
    blended = (1 - ALPHA) * gray + ALPHA * COLOURS[scaled(heat, low, high)]
    canvas = np.full((size, size + BAR_WIDTH + LABEL_WIDTH + 4, 3), 255, np.uint8)
    canvas[:, :size] = blended.clip(0, 255).astype(np.uint8)
    ramp = COLOURS[np.linspace(255, 0, size).astype(np.uint8)]  # high at the top
    canvas[:, size + 2:size + 2 + BAR_WIDTH] = ramp[:, None, :]
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    x = size + 4 + BAR_WIDTH
    draw.text((x, 0), _tick(high), fill=(0, 0, 0))
    draw.text((x, size - 11), _tick(low), fill=(0, 0, 0))
    return image


def _tick(value: float) -> str:
    return f"{value:.2g}"


def write_map(directory: Path, name: str, frame: np.ndarray, heat: np.ndarray, *,
              low: float | None = None, high: float | None = None) -> str:
    """DIR/NAME.png (overlay) and DIR/NAME.npy (float32 map); returns the PNG's name. Range: the map's."""
    low = float(np.min(heat)) if low is None else low
    high = float(np.max(heat)) if high is None else high
    overlay_image(frame, heat, low, high).save(directory / f"{name}.png", compress_level=1)
    np.save(directory / f"{name}.npy", heat.astype(np.float32))
    return f"{name}.png"


def write_frame(directory: Path, name: str, frame: np.ndarray) -> str:
    """The preprocessed frame alone, as the review page's thumbnail."""
    Image.fromarray(frame).save(directory / f"{name}.png", compress_level=1)
    return f"{name}.png"
