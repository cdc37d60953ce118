"""B-mode simulation: scatterers, point-spread function, envelope, attenuation and TGC, log compression,
convex-probe scan conversion. Vectorised numpy/scipy, one frame at a time.

The scene is built in beam space (rows = depth along a beam, columns = beams), where shadows and
enhancement are a cumulative sum down each column; scan conversion then draws the sector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Sector:
    """A convex probe's beam grid: physical coordinates of every sample and the scan-conversion map."""

    size: int
    depth_cm: float
    radius_cm: float
    half_angle: float
    x: np.ndarray  # (n_depth, n_beams) lateral position, cm
    z: np.ndarray  # (n_depth, n_beams) depth below the probe's centre, cm
    d: np.ndarray  # (n_depth, 1) distance along the beam from the probe surface, cm
    pixels: np.ndarray  # flat indices of the display pixels inside the sector
    corners: np.ndarray  # (4, n) flat beam-space indices of each pixel's bilinear neighbours
    weights: np.ndarray  # (4, n) their bilinear weights

    @property
    def shape(self) -> tuple[int, int]:
        return self.x.shape

    @property
    def display_height_cm(self) -> float:
        return self.depth_cm + self.radius_cm * (1 - math.cos(self.half_angle)) + 0.15

    def to_pixel(self, x: float, z: float) -> tuple[int, int]:
        """Display pixel (column, row) of the physical point (x, z) in cm."""
        scale = self.size / self.display_height_cm
        top = self.radius_cm * math.cos(self.half_angle) - 0.15
        return int(round(x * scale + self.size / 2)), int(round((z + self.radius_cm - top) * scale))

    def rows(self, z_min: float, z_max: float) -> slice:
        """The beam-space rows that can hold points with z_min <= z <= z_max (all beams)."""
        d = self.d[:, 0]
        d_max = (z_max + self.radius_cm) / math.cos(self.half_angle) - self.radius_cm
        lo, hi = np.searchsorted(d, z_min), np.searchsorted(d, d_max, side="right")
        return slice(int(max(lo - 1, 0)), int(min(hi + 1, len(d))))


@lru_cache(maxsize=16)
def make_sector(
    size: int, depth_cm: float = 16.0, radius_cm: float = 4.0, half_angle_deg: float = 33.0
) -> Sector:
    """Beam grid and display mapping of a convex probe; the display is square, apex above its top edge."""
    half = math.radians(half_angle_deg)
    n_depth, n_beams = size, max(16, int(size * 0.8))
    d = np.linspace(0, depth_cm, n_depth, dtype=np.float32)[:, None]
    theta = np.linspace(-half, half, n_beams, dtype=np.float32)[None, :]
    r = radius_cm + d
    x, z = r * np.sin(theta), r * np.cos(theta) - radius_cm
    top = radius_cm * math.cos(half) - 0.15  # display starts just above the sector's top corners
    height = depth_cm + radius_cm - top
    ii, jj = np.mgrid[0:size, 0:size].astype(np.float64)
    py = top + (ii + 0.5) * height / size
    px = (jj + 0.5 - size / 2) * height / size
    pr, pt = np.hypot(px, py), np.arctan2(px, py)
    row = ((pr - radius_cm) / depth_cm * (n_depth - 1)).ravel()
    col = ((pt + half) / (2 * half) * (n_beams - 1)).ravel()
    inside = (row >= 0) & (row <= n_depth - 1) & (col >= 0) & (col <= n_beams - 1)
    row, col = row[inside], col[inside]
    r0 = np.minimum(row.astype(int), n_depth - 2)
    c0 = np.minimum(col.astype(int), n_beams - 2)
    fr, fc = row - r0, col - c0
    corners = np.stack(
        [r0 * n_beams + c0, r0 * n_beams + c0 + 1, (r0 + 1) * n_beams + c0, (r0 + 1) * n_beams + c0 + 1]
    )
    weights = np.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc]).astype(np.float32)
    return Sector(
        size,
        depth_cm,
        radius_cm,
        half,
        x.astype(np.float32),
        z.astype(np.float32),
        d,
        np.flatnonzero(inside),
        corners,
        weights,
    )


def scan_convert(beam: np.ndarray, sector: Sector) -> np.ndarray:
    """Beam-space image -> square display image (bilinear), black outside the sector."""
    flat = beam.ravel()
    values = (flat[sector.corners] * sector.weights).sum(axis=0)
    image = np.zeros(sector.size * sector.size, np.float32)
    image[sector.pixels] = values
    return image.reshape(sector.size, sector.size)


@dataclass
class Scene:
    """Echo amplitude and attenuation (nepers/cm, round trip) of every beam-space sample."""

    sector: Sector
    echo: np.ndarray
    atten: np.ndarray

    @classmethod
    def empty(cls, sector: Sector, echo: float = 0.3, atten: float = 0.35) -> Scene:
        shape = sector.shape
        return cls(sector, np.full(shape, echo, np.float32), np.full(shape, atten, np.float32))

    def paint(self, mask: np.ndarray, echo: float | np.ndarray, atten: float | None = None) -> None:
        """Set echo (and optionally attenuation) where `mask` is true."""
        value = echo[mask] if isinstance(echo, np.ndarray) else echo
        self.echo[mask] = value
        if atten is not None:
            self.atten[mask] = atten


BACKGROUND_ECHO = 0.3  # Scene.empty's echogenicity: contrast leaves it unchanged


@dataclass(frozen=True)
class Acquisition:
    """Scanner settings of one frame."""

    gain_db: float = 0.0
    dynamic_range_db: float = 52.0
    tgc_np_per_cm: float = 0.29  # slightly under the tissue attenuation: deep tissue darkens a little
    psf_axial_px: float = 0.7
    psf_lateral_px: float = 1.3
    gamma: float = 1.3
    texture_shape: float = 0.0  # K-distribution shape of the scatterer density; 0 = Rayleigh envelope
    smoothing_px: float = 0.0  # the scanner's speckle reduction after log compression (Gaussian sigma)
    haze: float = 0.0  # receiver noise and clutter, relative to the background tissue's echo
    contrast: float = 1.0  # exponent on echogenicity relative to background tissue (tissue contrast)
    heterogeneity: float = 0.0  # sd of log echogenicity of tissue structure finer than the anatomy's
    heterogeneity_px: float = 3.0  # its grain (Gaussian sigma, beam-space samples)
    display_blur_px: float = 0.0  # the display's smoothing after scan conversion (persistence, resampling)
    edge_enhance: float = 0.0  # unsharp-mask gain of the display processing: crisper boundaries
    reject: float = 0.0  # the scanner's reject level: this share of the grey scale's low end shows black
    compounding: float = 0.0  # weight of a second, independent speckle look averaged in (compounding)


def speckle_envelope(amplitude: np.ndarray, sector: Sector, rng: np.random.Generator,
                     acq: Acquisition) -> np.ndarray:
    """Envelope of circular Gaussian scatterers of `amplitude` through the Gaussian PSF, whose lateral
    width grows with depth (beam divergence beyond the focus)."""
    shape = sector.shape
    re = rng.standard_normal(shape, dtype=np.float32) * amplitude
    im = rng.standard_normal(shape, dtype=np.float32) * amplitude
    sigma = (acq.psf_axial_px, acq.psf_lateral_px)
    re = ndimage.gaussian_filter(re, sigma, truncate=2.5)
    im = ndimage.gaussian_filter(im, sigma, truncate=2.5)
    deep = sector.rows(sector.depth_cm * 0.3, sector.depth_cm * 2)  # beams widen past the focus
    w = np.clip(sector.d[deep] / sector.depth_cm * 1.4 - 0.4, 0, 1)
    for part in (re, im):
        part[deep] = (
            part[deep] * (1 - w) + ndimage.gaussian_filter1d(part[deep], 1.2, axis=1, truncate=2.5) * w
        )
    return np.hypot(re, im) * math.sqrt(2 * math.pi * sigma[0] * sigma[1])


def simulate(scene: Scene, rng: np.random.Generator, acq: Acquisition) -> np.ndarray:
    """Scene -> display image in [0, 1] (size, size): speckle, PSF, attenuation, TGC, log compression."""
    sector = scene.sector
    shape = sector.shape
    # scatterers: circular Gaussian amplitudes weighted by echogenicity, then a Gaussian baseband PSF whose
    # lateral width grows with depth (beam divergence beyond the focus)
    amplitude = scene.echo
    if acq.contrast != 1.0:  # textures may dip below 0; the sign of an amplitude is irrelevant to speckle
        amplitude = BACKGROUND_ECHO * (np.abs(amplitude) / BACKGROUND_ECHO) ** acq.contrast
    if acq.heterogeneity > 0:  # real tissue is blotchy between the speckle grain and the organ outline
        field = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), acq.heterogeneity_px)
        field /= field.std() + 1e-6
        amplitude = amplitude * np.exp(acq.heterogeneity * field)
    if acq.texture_shape > 0:  # a varying number of scatterers per cell: K-distributed, heavier bright tail
        density = rng.gamma(acq.texture_shape, 1.0 / acq.texture_shape, shape).astype(np.float32)
        amplitude = amplitude * np.sqrt(density)
    envelope = speckle_envelope(amplitude, sector, rng, acq)
    if acq.compounding > 0:  # compounding / persistence: a partly decorrelated look, intensities averaged
        other = speckle_envelope(amplitude, sector, rng, acq)
        envelope = np.sqrt((1 - acq.compounding) * envelope ** 2 + acq.compounding * other ** 2)
    # attenuation accumulates down each beam (shadows, enhancement); TGC compensates the average tissue
    step = sector.depth_cm / (shape[0] - 1)
    loss = np.cumsum(scene.atten, axis=0) * step
    received = envelope * np.exp(-loss)
    if acq.haze > 0:  # receiver noise and clutter before TGC: fluid is never black, less so at depth
        received += np.hypot(rng.standard_normal(shape, dtype=np.float32),
                             rng.standard_normal(shape, dtype=np.float32)) * (acq.haze * BACKGROUND_ECHO)
    log_env = np.log(received + 1e-6) + acq.tgc_np_per_cm * sector.d
    db = log_env * (20 / math.log(10)) + acq.gain_db
    level = np.clip((db + acq.dynamic_range_db) / acq.dynamic_range_db, 0, 1)
    if acq.reject > 0:
        level = np.clip((level - acq.reject) / (1 - acq.reject), 0, 1)
    beam = level ** acq.gamma
    if acq.smoothing_px > 0:
        # beams fan out, so a beam-space sample is wider than a display pixel at depth: filter less across
        beam = ndimage.gaussian_filter(beam, (acq.smoothing_px, 0.5 * acq.smoothing_px), truncate=2.5)
    image = scan_convert(beam.astype(np.float32), sector)
    if acq.display_blur_px > 0 or acq.edge_enhance > 0:
        inside = np.zeros(image.size, bool)
        inside[sector.pixels] = True
        inside = inside.reshape(image.shape)
        smooth = ndimage.gaussian_filter(image, max(acq.display_blur_px, 1e-3), truncate=2.5)
        coarse = ndimage.gaussian_filter(image, 2.0 + acq.display_blur_px, truncate=2.5)
        image = np.where(inside, np.clip(smooth + acq.edge_enhance * (smooth - coarse), 0, 1), 0)
    return image.astype(np.float32)


@lru_cache(maxsize=64)
def _interpolation(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour and weight of n samples spread linearly over `cells` coarse values."""
    pos = np.linspace(0, cells - 1, n)
    lo = np.minimum(pos.astype(int), cells - 2)
    return lo, (pos - lo).astype(np.float32)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int = 8) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: tissue heterogeneity at the scale of shape/cells.

    Linear upsampling by gathers, not a matrix product: a multithreaded BLAS call per texture costs
    more than the whole frame when the cores are busy.
    """
    coarse = rng.standard_normal((cells, cells), dtype=np.float32) * 0.6
    lo, f = _interpolation(shape[0], cells)
    rows = coarse[lo] * (1 - f)[:, None] + coarse[lo + 1] * f[:, None]
    lo, f = _interpolation(shape[1], cells)
    return rows[:, lo] * (1 - f) + rows[:, lo + 1] * f
