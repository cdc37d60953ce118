"""Ultrasound preprocessing on real frames (../shared/data/real) and on synthetic frames with burned-in UI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from usconvirt.data.preprocess import (
    clean_frame,
    colour_overlay,
    overlay_mask,
    preprocess_ultrasound,
    sector_mask,
    to_grayscale,
)


def _load(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _real_frames(shared_real, folder):
    paths = sorted((shared_real / folder).glob("*.png"))
    assert paths, folder
    return paths


def test_sector_found_in_every_ahn_frame_and_covers_the_kidney(shared_real):
    for path in _real_frames(shared_real, "ahn_kidney/frames/images"):
        gray = to_grayscale(_load(path))
        mask = sector_mask(gray)
        # The convex fan fills most of these frames, but not the corners beside the probe.
        assert 0.5 < mask.mean() < 0.95, path.name
        assert not mask[:20, :20].any() and not mask[:20, -20:].any(), path.name
        kidney = (
            np.asarray(Image.open(shared_real / "ahn_kidney/frames/masks" / path.name).convert("L")) > 127
        )
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert kidney[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].sum() >= 0.99 * kidney.sum(), path.name
        assert (kidney & mask).sum() >= 0.97 * kidney.sum(), path.name


def test_sector_found_in_every_kidney_stone_frame(shared_real):
    for path in _real_frames(shared_real, "kidney_stone/images"):
        frame = _load(path)
        out = preprocess_ultrasound(frame, 128)
        top, left, bottom, right = out.crop_box
        area = (bottom - top) * (right - left)
        # The UI (depth scale, grey bar, labels under the fan) is cut off, at least below the fan ...
        assert 0.3 * 512 * 512 < area < 512 * 512, (path.name, out.crop_box)
        assert 0.3 < sector_mask(to_grayscale(frame)).mean() < 0.9, path.name
        # ... and the sector keeps the stone (masks/ holds the stone of each frame).
        stone = np.asarray(Image.open(shared_real / "kidney_stone/masks" / path.name).convert("L")) > 127
        assert stone[top:bottom, left:right].sum() >= 0.95 * stone.sum(), path.name
        assert out.image.shape == (128, 128) and out.image.dtype == np.uint8
        # Stones are small bright echoes, blurred by the beam: never taken for burned-in text.
        gray = to_grayscale(frame)
        assert (overlay_mask(gray, colour_overlay(frame)) & stone).sum() <= 0.1 * stone.sum(), path.name


def test_known_text_on_a_real_frame_is_blanked(shared_real):
    # "Left Kidney" is burned in white inside the fan of this frame, around rows 455-480, columns 150-260.
    path = _real_frames(shared_real, "ahn_kidney/frames/images")[3]
    gray = to_grayscale(_load(path))
    region = (slice(450, 485), slice(140, 270))
    assert (gray[region] >= 245).sum() > 150  # the text is there
    crop, (top, left, _, _) = clean_frame(_load(path))
    after = crop[region[0].start - top : region[0].stop - top, region[1].start - left : region[1].stop - left]
    assert (after >= 245).sum() < 0.25 * (gray[region] >= 245).sum()


def _synthetic_sector(seed: int = 0, size: int = 400) -> np.ndarray:
    """A convex fan of speckle on black, with a bright thick echo (a 'stone') in it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r, angle = np.hypot(yy + 60, xx - size / 2), np.arctan2(xx - size / 2, yy + 60)
    fan = (r > 80) & (r < size + 20) & (np.abs(angle) < 0.6)
    image = np.where(fan, rng.gamma(2.0, 40.0, (size, size)).clip(0, 200), 0).astype(np.uint8)
    image[250:270, 190:215] = 255  # the stone: saturated but thick, must survive
    return image, fan


def test_synthetic_text_and_calipers_are_blanked_and_anatomy_kept():
    image, fan = _synthetic_sector()
    ui = Image.fromarray(np.stack([image] * 3, -1))
    draw = ImageDraw.Draw(ui)
    font = ImageFont.load_default(size=16)
    draw.text((150, 150), "RIGHT KIDNEY", fill=(255, 255, 255), font=font)  # white text inside the fan
    draw.line([(120, 300), (130, 300)], fill=(255, 255, 0), width=1)  # yellow caliper cross
    draw.line([(125, 295), (125, 305)], fill=(255, 255, 0), width=1)
    draw.text((5, 5), "DUPONT J", fill=(255, 255, 255), font=font)  # UI outside the fan
    frame = np.asarray(ui)
    crop, (top, left, bottom, right) = clean_frame(frame)
    full = np.zeros_like(image)
    full[top:bottom, left:right] = crop
    text_pixels = (to_grayscale(frame) >= 250) & ~(image >= 250)
    assert text_pixels[140:175, 145:300].sum() > 100
    # The text is blanked, up to a few 1-2 px anti-aliasing fragments of curved letters.
    assert (full[140:175, 145:300] >= 250).sum() <= 0.1 * text_pixels[140:175, 145:300].sum()
    assert full[295:306, 120:131].max() < 250 and (full[295:306, 120:131] == 0).sum() >= 21  # the caliper
    assert not full[~ndimage.binary_dilation(fan, iterations=10)].any()  # the UI outside the fan is gone
    assert (full[250:270, 190:215] == 255).mean() > 0.9  # the thick echo is anatomy, kept
    speckle = fan & (image < 200)
    speckle[140:175, 145:300] = speckle[295:306, 120:131] = False
    assert (full[speckle] == image[speckle]).mean() > 0.97  # B-mode elsewhere untouched


def test_preprocess_shapes_and_grayscale_input():
    image, _ = _synthetic_sector(size=300)
    out = preprocess_ultrasound(image, 64)
    assert out.image.shape == (64, 64) and out.image.dtype == np.uint8
    top, left, bottom, right = out.crop_box
    assert 0 <= top < bottom <= 300 and 0 <= left < right <= 300
    assert out.image.max() > 0


@pytest.mark.parametrize("frame", [np.zeros((50, 60), np.uint8), np.full((50, 60), 200, np.uint8)])
def test_degenerate_frames_do_not_crash(frame):
    out = preprocess_ultrasound(frame, 32)
    assert out.image.shape == (32, 32)
    assert out.crop_box == (0, 0, 50, 60)
