"""Ultrasound preprocessing, one function for ingest and every training stage.

grayscale -> crop to the scan sector -> blank burned-in text and calipers -> resize (keep aspect) -> pad;
an organ crop (no scanner background: tissue up to the border) is only made grayscale and resized.

The sector is found on a block-averaged copy (about 128 px): averaging smooths the speckle, so the fan is one
bright region, and an opening there cuts the thin links to the scanner UI (labels, depth scale, text) before
the largest connected region is kept; its convex hull is the sector. Burned-in text and calipers are
near-saturated strokes a few pixels wide, glyph-sized and sharper than any echo, or coloured pixels in a
grayscale image; both are blanked, inside the sector too. Known limits: UI drawn in mid-gray inside the
sector stays, and with two sectors side by side (dual display) only the larger is kept.

Organ crops (datasets of small boxes around one organ, as some teams export for labelling) have no
background: the sector search would take the darkest corner's tissue for it, cut or mask much of the
organ, blank bright echoes as text and pad with black bars (bench/cluster_crops.py measures it). A frame
counts as an export when most of its border and at least three of its corners are dark (within
CROP_DARK_LEVEL of its darkest pixel): every export we have, real or synthetic, raw or once cleaned,
except a sector that fills its frame once ingest has cropped it (2 of 77 real frames, which then are
resized without padding). Anything else is a crop, kept whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

WORK_SIZE = 128  # the sector is searched at about this resolution
SECTOR_THRESHOLD = 3  # gray level (block-averaged) above which a pixel is echo, not background ...
BACKGROUND_MARGIN = 5  # ... or this far above the background, for exports whose black is not 0
MIN_SECTOR_FRACTION = 0.05  # a region smaller than this share of the frame is not a scan sector
STROKE_LEVEL = 230  # white overlays (text, calipers) are drawn at or near saturation
MAX_STROKE_INTERIOR = 0.25  # share of a stroke's pixels with all 4 neighbours set: low for thin strokes
MIN_STROKE_PIXELS = 8  # smaller specks are speckle or tiny stones, not glyphs (their fragments are
MIN_GLYPH_SPAN = 5  # taken with the glyph they lie beside); a glyph also spans at least this many pixels
STROKE_CONTRAST = 130  # a stroke is this much brighter than the gray 2 px away; blurred echoes are not
MIN_GLYPH_EXTENT = 12  # a white component longer than max(this, GLYPH_FRACTION of the frame) is anatomy
GLYPH_FRACTION = 0.06
COLOUR_CHROMA = 48  # max-min over RGB above this is a coloured overlay, never B-mode gray
# Exports vs organ crops: the border band and corner patches read, as shares of the short side; "dark"
# is at most CROP_DARK_LEVEL above the frame's darkest pixel. Exports: 62-98 % of the border dark and >= 3
# dark corners; organ crops: under 55 % or fewer dark corners (bench/cluster_crops.py detect).
CROP_BORDER_FRACTION = 0.03
CROP_CORNER_FRACTION = 0.08
CROP_DARK_LEVEL = 8
CROP_MIN_DARK_BORDER = 0.58
CROP_MIN_DARK_CORNERS = 3
CROP_CORNER_DARK_SHARE = 0.6  # a corner patch is dark when this share of its pixels is
# Bumped whenever the chain's output changes, so that frame caches made by an older chain are rebuilt.
PREPROCESS_VERSION = 2  # 2: organ crops kept whole
# Pixel neighbourhoods (dy, dx): 4-neighbours, 3x3, and the ring 2 px out where the background is read.
CROSS = ((-1, 0), (1, 0), (0, -1), (0, 1))
SQUARE = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
RING = ((-2, 0), (2, 0), (0, -2), (0, 2), (-2, -2), (-2, 2), (2, -2), (2, 2))


@dataclass(frozen=True)
class Preprocessed:
    image: np.ndarray  # uint8, (size, size)
    crop_box: tuple[int, int, int, int]  # (top, left, bottom, right) in the source; bottom/right exclusive
    organ_crop: bool = False  # kept whole and stretched to the square (`is_crop`), not sector-cropped


def to_grayscale(frame: np.ndarray) -> np.ndarray:
    """uint8 grayscale from a 2-D, RGB or RGBA frame."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.dtype == np.uint8:  # ITU-R 601 weights in fixed point: 4x faster than float
        r, g, b = (frame[..., i].astype(np.uint16) for i in range(3))
        return ((r * 77 + g * 150 + b * 29 + 128) >> 8).astype(np.uint8)
    if frame.ndim == 3:
        frame = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if frame.dtype != np.uint8:
        lo, hi = float(frame.min()), float(frame.max())
        frame = (frame - lo) * (255.0 / max(hi - lo, 1e-6))
    return np.clip(frame, 0, 255).astype(np.uint8)


def colour_overlay(frame: np.ndarray) -> np.ndarray:
    """Pixels whose colour cannot be B-mode gray (coloured calipers, labels); all False for a gray frame."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] < 3:
        return np.zeros(frame.shape[:2], bool)
    r, g, b = frame[..., 0], frame[..., 1], frame[..., 2]  # channel-wise max/min: 20x faster than axis=2
    return np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b) > COLOUR_CHROMA


def sector_mask(
    gray: np.ndarray, threshold: int = SECTOR_THRESHOLD, colour: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of the B-mode sector (fan or rectangle), at the frame's resolution.

    `colour` (see colour_overlay) keeps mostly coloured areas, such as a scanner's header banner, from being
    taken for the sector; the convex hull then closes any Doppler hole in it.
    """
    h, w = gray.shape
    f = max(1, -(-min(h, w) // WORK_SIZE))  # ceil: the work image is at most WORK_SIZE on its short side
    hs, ws = h // f, w // f
    small = _block_mean(gray, f)
    threshold = max(threshold, _background_level(small) + BACKGROUND_MARGIN)
    echo = small > threshold
    if colour is not None:
        echo &= _block_mean(colour.view(np.uint8), f) < 0.5
    bright = _dilate(_dilate(~_dilate(_dilate(~echo))))  # 5x5 opening: erosion = ~dilate(~)
    labels, n = ndimage.label(bright)
    if n == 0:
        return np.ones_like(gray, bool)
    sizes = np.bincount(labels.ravel())[1:]
    region = labels == (int(sizes.argmax()) + 1)
    if sizes.max() < MIN_SECTOR_FRACTION * hs * ws:
        return np.ones_like(gray, bool)
    region = _convex_fill(region)
    region = _dilate(region)  # never cut B-mode at the blocky edge
    mask = np.zeros_like(gray, bool)
    mask[: hs * f, : ws * f] = region.repeat(f, axis=0).repeat(f, axis=1)
    return mask


def _block_mean(image: np.ndarray, f: int) -> np.ndarray:
    """Mean over f x f blocks (the remainder rows and columns are dropped)."""
    hs, ws = image.shape[0] // f, image.shape[1] // f
    # Strided slice sums: several times faster than reshape(hs, f, ws, f).sum over the short axes.
    rows = sum(image[i : hs * f : f, : ws * f].astype(np.uint32) for i in range(f))
    return sum(rows[:, j::f] for j in range(f)) / (f * f)


def _background_level(small: np.ndarray) -> float:
    """Gray level of the background: the darkest of the four corner medians (a fan may fill some corners)."""
    k = max(1, min(small.shape) // 16)
    corners = (small[:k, :k], small[:k, -k:], small[-k:, :k], small[-k:, -k:])
    return float(min(np.median(c) for c in corners))


def _convex_fill(region: np.ndarray) -> np.ndarray:
    """The convex hull of a region: fans and rectangles are convex, so anechoic structures at the sector's
    edge (cysts, shadowing) stay inside it."""
    rows = np.nonzero(region.any(axis=1))[0]
    first = region[rows].argmax(axis=1)
    last = region.shape[1] - 1 - region[rows, ::-1].argmax(axis=1)
    points = np.concatenate([np.stack([first, rows], 1), np.stack([last, rows], 1)]).astype(float)
    try:
        hull = points[ConvexHull(points).vertices]
    except QhullError:  # a line or a point: nothing to fill
        return region
    canvas = Image.new("1", (region.shape[1], region.shape[0]), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in hull], fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size == 0:
        return 0, 0, mask.shape[0], mask.shape[1]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def overlay_mask(gray: np.ndarray, colour: np.ndarray | None = None) -> np.ndarray:
    """Burned-in text and calipers: thin near-saturated or coloured components, dilated by one pixel.

    Candidates are rare (well under 1% of a frame), so their statistics are computed on their coordinates
    rather than on whole-image arrays: this keeps the function near 1 ms at 512 px.
    """
    candidates = gray >= STROKE_LEVEL
    if colour is not None:
        candidates |= colour
    labels, n = ndimage.label(candidates, structure=np.ones((3, 3), bool))
    if n == 0:
        return candidates
    ys, xs = np.nonzero(candidates)
    label = labels[ys, xs]
    area = np.bincount(label, minlength=n + 1)
    # Glyph and caliper strokes are 1-3 px wide, so few of their pixels have all four neighbours set;
    # saturated echoes (stones, bone) are thicker blobs.
    interior = np.bincount(label[_sample(candidates, ys, xs, CROSS).all(axis=0)], minlength=n + 1)
    # Text is drawn sharp over darker tissue; a bright echo is blurred by the beam, so the gray 2 px out
    # (past any anti-aliased edge, and not itself next to a candidate) is still bright.
    near = _dilate(candidates)
    far = ~_sample(near, ys, xs, RING)
    samples = np.broadcast_to(label, far.shape)[far]
    ring_sum = np.bincount(samples, weights=_sample(gray, ys, xs, RING)[far], minlength=n + 1)
    ring_mean = ring_sum / np.maximum(np.bincount(samples, minlength=n + 1), 1)
    mean = np.bincount(label, weights=gray[ys, xs], minlength=n + 1) / np.maximum(area, 1)
    # Thin bright fascia lines pass the tests above but are longer than any glyph.
    extent = np.maximum(_label_range(label, ys, n), _label_range(label, xs, n))
    glyph = (extent <= max(MIN_GLYPH_EXTENT, GLYPH_FRACTION * min(gray.shape))) & (extent >= MIN_GLYPH_SPAN)
    glyph &= area >= MIN_STROKE_PIXELS
    keep = glyph & (interior <= MAX_STROKE_INTERIOR * area) & (mean - ring_mean >= STROKE_CONTRAST)
    if colour is not None:
        keep |= np.bincount(label[colour[ys, xs]], minlength=n + 1) > 0  # coloured overlays, any shape
    kept = keep[label]
    blank = _paint(np.zeros_like(candidates), ys[kept], xs[kept])
    # Anti-aliased diagonals break off 1-2 px fragments beside their glyph: take those too.
    fragment = ~kept & _sample(blank, ys, xs, SQUARE).any(axis=0)
    return _paint(blank, ys[fragment], xs[fragment])


def _sample(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, offsets) -> np.ndarray:
    """image[y + dy, x + dx] for every offset (rows) and point (columns), clamped at the border."""
    h, w = image.shape
    return np.stack([image[_clamp(ys + dy, h), _clamp(xs + dx, w)] for dy, dx in offsets])


def _paint(mask: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Set the 3x3 neighbourhood of every point in `mask` (in place) and return it."""
    h, w = mask.shape
    for dy, dx in SQUARE:
        mask[_clamp(ys + dy, h), _clamp(xs + dx, w)] = True
    return mask


def _clamp(index: np.ndarray, size: int) -> np.ndarray:
    """Indices clamped into [0, size), in place (np.clip's wrapper costs more than the work here)."""
    return np.minimum(np.maximum(index, 0, out=index), size - 1, out=index)


def _label_range(label: np.ndarray, coord: np.ndarray, n: int) -> np.ndarray:
    """Per label 1..n: max - min + 1 of `coord` over its points (0 for label 0)."""
    lo = np.full(n + 1, np.iinfo(np.int64).max)
    hi = np.full(n + 1, -1)
    np.minimum.at(lo, label, coord)
    np.maximum.at(hi, label, coord)
    return np.where(hi >= 0, hi - lo + 1, 0)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation by slicing (anti-aliased glyph edges are blanked too)."""
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def is_crop(gray: np.ndarray) -> bool:
    """True for a frame without a scanner background around a sector: tissue reaches the border.

    An export's border is mostly background even where text or a depth scale is drawn on it, and most of
    its corners are dark; a crop's border is tissue except where an anechoic organ or a shadow touches it,
    and such a crop rarely darkens both most of its border and its corners.
    """
    h, w = gray.shape
    dark = gray <= int(gray.min()) + CROP_DARK_LEVEL
    k = max(1, round(CROP_BORDER_FRACTION * min(h, w)))
    border = np.concatenate([dark[:k].ravel(), dark[-k:].ravel(), dark[k:-k, :k].ravel(),
                             dark[k:-k, -k:].ravel()])
    c = max(2, round(CROP_CORNER_FRACTION * min(h, w)))
    corners = sum(p.mean() >= CROP_CORNER_DARK_SHARE
                  for p in (dark[:c, :c], dark[:c, -c:], dark[-c:, :c], dark[-c:, -c:]))
    return not (border.mean() >= CROP_MIN_DARK_BORDER and corners >= CROP_MIN_DARK_CORNERS)


def clean_frame(frame: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Grayscale sector crop with the UI outside the fan and burned-in overlays blanked, and its crop box;
    an organ crop comes back whole (grayscale), its box the frame."""
    gray = to_grayscale(frame)
    if is_crop(gray):
        return gray, (0, 0, *gray.shape)
    return clean_sector(frame, gray)


def clean_sector(frame: np.ndarray, gray: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """`clean_frame` for a scanner export (also what every frame went through before organ crops)."""
    gray = to_grayscale(frame) if gray is None else gray
    colour = colour_overlay(frame) if np.ndim(frame) == 3 else None
    mask = sector_mask(gray, colour=colour)
    top, left, bottom, right = _bounding_box(mask)
    crop = gray[top:bottom, left:right].copy()
    crop_colour = colour[top:bottom, left:right] if colour is not None else None
    crop[~mask[top:bottom, left:right] | overlay_mask(crop, crop_colour)] = 0
    return crop, (top, left, bottom, right)


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


def resize_crop(gray: np.ndarray, size: int) -> np.ndarray:
    """An organ crop to size x size: every pixel kept, no padding (black bars would be the strongest
    edge of a crop, and the aspect ratio of a crop box says nothing of the organ)."""
    return np.asarray(Image.fromarray(gray).resize((size, size), Image.BILINEAR))


def resize_for_model(gray: np.ndarray, size: int) -> np.ndarray:
    """A cleaned frame to size x size: padded to keep the aspect of a sector, stretched for a crop."""
    return resize_crop(gray, size) if is_crop(gray) else resize_pad(gray, size)


def preprocess_ultrasound(frame: np.ndarray, size: int = 224) -> Preprocessed:
    """The whole preprocessing chain for one frame."""
    crop, box = clean_frame(frame)
    whole = is_crop(crop)
    return Preprocessed(resize_crop(crop, size) if whole else resize_pad(crop, size), box, whole)
