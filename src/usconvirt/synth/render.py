"""Render one planned freeze frame: organ scene -> B-mode simulation -> burned-in scanner overlay."""

from __future__ import annotations

import zlib

import numpy as np

from usconvirt.synth import anatomy
from usconvirt.synth.bmode import Acquisition, Scene, make_sector, simulate
from usconvirt.synth.exam import ExamState
from usconvirt.synth.pathology import kidney_view
from usconvirt.synth.protocol import FramePlan
from usconvirt.synth.scanner_ui import PRESETS, PROBES, Overlay, burn_overlay

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


def render_frame(
    rng: np.random.Generator, exam: ExamState, plan: FramePlan, size: int, overlay: bool = True
) -> np.ndarray:
    """The frame as uint8 (size, size).

    Anatomy, scanner settings and speckle draw from separate streams, so a finding changes the anatomy
    only: the same seed renders the same speckle and settings with and without it.
    """
    anatomy_rng, scanner_rng, speckle_rng = rng.spawn(3)
    sector = make_sector(
        size, depth_cm=float(scanner_rng.choice(KIDNEY_DEPTHS_CM if plan.organ == "kidney" else DEPTHS_CM))
    )
    scene = Scene.empty(sector, echo=0.3, atten=anatomy.TISSUE_ATTEN)
    anatomy.background_tissue(anatomy_rng, scene)
    top = anatomy.abdominal_wall(anatomy_rng, scene)
    view = kidney_view if plan.view == "renal_fossa" else VIEWS[plan.organ]
    axis = view(anatomy_rng, scene, exam, plan, top)  # kidney views return their major axis
    acq = Acquisition(
        gain_db=scanner_rng.uniform(-17, -12),
        dynamic_range_db=scanner_rng.uniform(46, 56),
        psf_axial_px=0.9 * size / 256 + 0.3,
        psf_lateral_px=2.0 * size / 256 + 0.5,
    )
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
