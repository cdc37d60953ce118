"""Render one planned freeze frame: organ scene -> B-mode simulation -> burned-in scanner overlay."""

from __future__ import annotations

import zlib

import numpy as np

from usconvirt.synth import anatomy
from usconvirt.synth.bmode import Acquisition, Scene, make_sector, simulate
from usconvirt.synth.config import SCANNER_MODELS
from usconvirt.synth.exam import ExamState
from usconvirt.synth.pathology import kidney_view
from usconvirt.synth.protocol import FramePlan
from usconvirt.synth.scanner_ui import PRESETS, PROBES, Overlay, burn_overlay

Axis = tuple[tuple[float, float], tuple[float, float]]  # end points (cm) of a kidney's major axis
DEPTHS_CM = (14.0, 16.0, 18.0)
KIDNEY_DEPTHS_CM = (11.0, 12.0, 13.0, 14.0)


VIEWS = {
    "liver": anatomy.liver_view,
    "gallbladder": anatomy.gallbladder,
    "pancreas": anatomy.pancreas,
    "spleen": anatomy.spleen,
    "aorta": anatomy.aorta,
    "bladder": anatomy.bladder,
    "kidney": kidney_view,
    "other": anatomy.bowel_view,
}


# Ranges of one simulated scanner's settings, (low, high) drawn once per exam, set so that the frame
# statistics of bench/realism.py come near the real kidney frames. The default (`synth.scanners: single`):
# every synthetic study in docs/results.md was rendered with it.
SINGLE_SCANNER = (
    {
        "gain_db": (-29.0, -22.0),
        "dynamic_range_db": (80.0, 95.0),  # wide: real speckle has a low contrast inside bright tissue
        "psf_scale": (0.65, 0.85),  # speckle size relative to the probe's nominal PSF
        "lateral_scale": (0.4, 0.55),
        "gamma": (1.4, 2.0),
        "texture_shape": (1.5, 5.0),  # K-distribution shape: low = clumpy scatterers, a heavier bright tail
        "smoothing_px": (0.1, 0.4),  # speckle reduction, at 256 px
        "contrast": (2.2, 3.0),  # tissue contrast: real organs differ far more than speckle does
        "haze": (0.0005, 0.004),
    },
)
# `synth.scanners: families`: ranges drawn once per exam, in two families after the
# two real scanner families of ../shared/data/real: a sharp, contrasted paediatric look (AHN frames) and
# a smoother, hazier adult look with darker depths (Samsung, Kidney Stone frames). Each family's ranges
# were set on corpus seed 0 so that the statistics of bench/realism.py match that family's real frames
# (docs/synthetic-corpus.md); each exam draws a family.
SCANNER_FAMILIES = (
    {  # bright and contrasted, as the AHN frames
        "gain_db": (-22.6, -15.6),
        "dynamic_range_db": (73.3, 88.3),  # wide: real speckle has a low contrast inside bright tissue
        "psf_scale": (0.56, 0.76),  # speckle size relative to the probe's nominal PSF
        "lateral_scale": (0.47, 0.62),
        "gamma": (1.59, 2.19),
        "texture_shape": (2.8, 6.3),  # K-distribution shape: low = clumpy scatterers, a heavier bright tail
        "smoothing_px": (0.48, 0.78),  # speckle reduction after log compression, at 256 px
        "contrast": (2.5, 3.3),  # tissue contrast: real organs differ far more than speckle does
        "haze": (0.0028, 0.0063),
        "heterogeneity": (0.06, 0.46),  # blotchy tissue finer than the anatomy (sd of log echogenicity)
        "heterogeneity_px": (5.3, 7.3),  # its grain, at 256 px
        "display_blur_px": (0.0, 0.6),  # display smoothing after scan conversion, at 256 px
        "edge_enhance": (0.01, 0.61),  # the display's unsharp mask
        "reject": (0.004, 0.064),  # low grey levels shown black
        "compounding": (0.1, 0.3),  # weight of a second speckle look averaged in (compounding, persistence)
    },
    {  # finer speckle, less contrast, blotchier, as the Samsung (Kidney Stone) frames
        "gain_db": (-28.0, -21.0),
        "dynamic_range_db": (81.0, 96.0),
        "psf_scale": (0.4, 0.6),
        "lateral_scale": (0.52, 0.67),
        "gamma": (1.85, 2.45),
        "texture_shape": (0.5, 4.0),
        "smoothing_px": (0.05, 0.35),
        "contrast": (1.57, 2.37),
        "haze": (0.0, 0.0035),
        "heterogeneity": (0.4, 0.8),
        "heterogeneity_px": (5.1, 7.1),
        "display_blur_px": (0.04, 0.64),
        "edge_enhance": (0.1, 0.7),
        "reject": (0.0, 0.06),
        "compounding": (0.3, 0.5),
    },
)
# the families' settings that the single scanner leaves off
OFF_SETTINGS = {"heterogeneity": 0.0, "heterogeneity_px": 3.0, "display_blur_px": 0.0, "edge_enhance": 0.0,
                "reject": 0.0, "compounding": 0.0}
FRAME_JITTER = {"gain_db": 2.5, "dynamic_range_db": 3.0}  # the sonographer's per-frame changes (+/-)


def scanner_families(scanners: str) -> tuple[dict[str, tuple[float, float]], ...]:
    """The setting ranges of `synth.scanners` (single or families)."""
    if scanners not in SCANNER_MODELS:
        raise ValueError(f"scanners must be one of {', '.join(SCANNER_MODELS)}, got '{scanners}'")
    return SINGLE_SCANNER if scanners == "single" else SCANNER_FAMILIES


def exam_scanner(exam_id: str, scanners: str = "single") -> tuple[int, dict[str, float]]:
    """The scanner fixed per exam, drawn from its id: the family's index and its settings."""
    scanner = np.random.default_rng(zlib.crc32(exam_id.encode()) + 1)
    families = scanner_families(scanners)
    # one family draws nothing, so the single scanner's frames stay those of every earlier corpus
    index = 0 if len(families) == 1 else int(scanner.integers(len(families)))
    return index, {key: scanner.uniform(lo, hi) for key, (lo, hi) in families[index].items()}


def acquisition(exam_id: str, size: int, rng: np.random.Generator, scanners: str = "single") -> Acquisition:
    """Settings of one frame: a simulated scanner fixed per exam (speckle size, speckle reduction,
    dynamic range, grey map, tissue contrast), then the sonographer's gain and dynamic range per frame."""
    v = OFF_SETTINGS | exam_scanner(exam_id, scanners)[1]
    for key, half in FRAME_JITTER.items():
        v[key] += rng.uniform(-half, half)
    return Acquisition(
        gain_db=v["gain_db"],
        dynamic_range_db=v["dynamic_range_db"],
        psf_axial_px=(0.9 * size / 256 + 0.3) * v["psf_scale"],
        psf_lateral_px=(2.0 * size / 256 + 0.5) * v["psf_scale"] * v["lateral_scale"],
        gamma=v["gamma"],
        texture_shape=v["texture_shape"],
        smoothing_px=v["smoothing_px"] * size / 256,
        contrast=v["contrast"],
        haze=v["haze"],
        heterogeneity=v["heterogeneity"],
        heterogeneity_px=v["heterogeneity_px"] * size / 256,
        display_blur_px=v["display_blur_px"] * size / 256,
        edge_enhance=v["edge_enhance"],
        reject=v["reject"],
        compounding=v["compounding"],
    )


def frame_anatomy(anatomy_rng: np.random.Generator, scanner_rng: np.random.Generator, exam: ExamState,
                  plan: FramePlan, size: int) -> tuple[Scene, Axis | None]:
    """The frame's scene before any speckle, and a kidney view's major axis (cm): what the evaluation
    replays, without simulating the echoes, to know where the kidney lies."""
    sector = make_sector(
        size, depth_cm=float(scanner_rng.choice(KIDNEY_DEPTHS_CM if plan.organ == "kidney" else DEPTHS_CM))
    )
    scene = Scene.empty(sector, echo=0.3, atten=anatomy.TISSUE_ATTEN)
    anatomy.background_tissue(anatomy_rng, scene)
    top = anatomy.abdominal_wall(anatomy_rng, scene)
    view = kidney_view if plan.view == "renal_fossa" else VIEWS[plan.organ]
    return scene, view(anatomy_rng, scene, exam, plan, top)  # kidney views return their major axis


def render_frame(
    rng: np.random.Generator, exam: ExamState, plan: FramePlan, size: int, overlay: bool = True,
    scanners: str = "single",
) -> np.ndarray:
    """The frame as uint8 (size, size).

    Anatomy, scanner settings and speckle draw from separate streams, so a finding changes the anatomy
    only: the same seed renders the same speckle and settings with and without it.
    """
    anatomy_rng, scanner_rng, speckle_rng = rng.spawn(3)
    scene, axis = frame_anatomy(anatomy_rng, scanner_rng, exam, plan, size)
    sector = scene.sector
    acq = acquisition(exam.exam_id, size, scanner_rng, scanners)
    image = (simulate(scene, speckle_rng, acq) * 255).astype(np.uint8)
    if not overlay:
        return image
    caliper, text = None, ""
    if plan.calipers and axis is not None:
        (x0, z0), (x1, z1) = axis
        caliper = (sector.to_pixel(x0, z0), sector.to_pixel(x1, z1))
        text = f"D1 {np.hypot(x1 - x0, z1 - z0):.2f} cm"
    scanner = zlib.crc32(exam.exam_id.encode())  # one probe and preset for the whole exam
    year, month, day = exam.exam_date.split("-")
    info = Overlay(
        probe=PROBES[scanner % len(PROBES)],
        preset=PRESETS[(scanner // 7) % len(PRESETS)],
        date=f"{day}/{month}/{year}",
        initials=exam.initials,
        frequency_mhz=float(scanner_rng.choice([2.5, 3.5, 4.0, 5.0])),
        gain=int(scanner_rng.integers(40, 80)),
        caliper=caliper,
        caliper_text=text,
    )
    return burn_overlay(image, sector, info)
