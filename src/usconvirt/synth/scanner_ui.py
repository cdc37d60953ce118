"""Burned-in scanner interface: probe and preset labels, depth scale, fake date and initials, calipers.

Real frames carry this text; preprocessing and models must learn to ignore it, so the corpus has it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from usconvirt.synth.bmode import Sector

PROBES = ("C5-1", "C5-2", "CA430", "C1-6", "6C1", "CX50")
PRESETS = ("ABD", "Abdomen", "ABDO GEN", "Renal", "ABD Pen")


@dataclass(frozen=True)
class Overlay:
    """The text and marks burned into one frame."""

    probe: str
    preset: str
    date: str
    initials: str
    frequency_mhz: float
    gain: int
    caliper: tuple[tuple[int, int], tuple[int, int]] | None = None
    caliper_text: str = ""


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


def burn_overlay(image: np.ndarray, sector: Sector, overlay: Overlay) -> np.ndarray:
    """Draw the overlay on a uint8 frame (returns a new array)."""
    size = image.shape[0]
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    font = _font(size // 26)
    white = 235
    draw.text((2, 1), f"{overlay.probe} {overlay.preset}", fill=white, font=font)
    draw.text((2, 1 + size // 22), f"{overlay.frequency_mhz:.1f}MHz G{overlay.gain}", fill=200, font=font)
    right = size - 2
    draw.text((right, 1), overlay.date, fill=white, font=font, anchor="ra")
    draw.text((right, 1 + size // 22), overlay.initials, fill=white, font=font, anchor="ra")
    px_per_cm = size / sector.display_height_cm
    x = size - max(3, size // 40)
    for cm in range(0, int(sector.depth_cm) + 1):
        y = int(round((cm + 0.15) * px_per_cm))
        tick = max(2, size // 64) * (2 if cm % 5 == 0 else 1)
        draw.line([(x - tick, y), (x, y)], fill=white)
        if cm % 5 == 0 and cm:
            draw.text((x - tick - 1, y), str(cm), fill=white, font=font, anchor="rm")
    if overlay.caliper is not None:
        arm = max(2, size // 64)
        for cx, cy in overlay.caliper:
            draw.line([(cx - arm, cy), (cx + arm, cy)], fill=white)
            draw.line([(cx, cy - arm), (cx, cy + arm)], fill=white)
        (x0, y0), (x1, y1) = overlay.caliper
        for t in np.linspace(0.1, 0.9, 9):
            draw.point((x0 + t * (x1 - x0), y0 + t * (y1 - y0)), fill=200)
        draw.text((size - 4, size - 3), overlay.caliper_text, fill=white, font=font, anchor="rd")
    return np.asarray(pil)
