"""Kidney views with their findings: cysts (anechoic, posterior enhancement), stones (echogenic with a
shadow), hydronephrosis grades 1-3 (dilated anechoic pelvis and calyces), atrophy (small, hyperechoic,
thin cortex), solid mass, angiomyolipoma (bright), nephrectomy (empty renal fossa).

Sizes are kept large relative to the kidney so that a finding still shows once the frame is at 64 px.
"""

from __future__ import annotations

import math

import numpy as np

from usconvirt.synth import anatomy
from usconvirt.synth.bmode import Scene
from usconvirt.synth.exam import ExamState, KidneyState
from usconvirt.synth.protocol import FramePlan

LESION_LOOK = {  # echo, attenuation (nepers/cm)
    "cyst": (anatomy.FLUID_ECHO, anatomy.FLUID_ATTEN),
    "stone": (3.0, 2.5),
    "mass": (0.16, 0.45),
    "angiomyolipoma": (1.5, 0.9),
}


def section_axes(kidney: KidneyState, plan: FramePlan) -> tuple[float, float]:
    """Semi-axes (cm) of the kidney's section by the frame's plane (an ellipsoid cut off-centre)."""
    half_len, half_wid = kidney.length_cm / 2, kidney.width_cm / 2
    thick = half_wid * 0.85
    if plan.view == "long":
        shrink = math.sqrt(max(1 - (plan.cut / (thick * 1.3)) ** 2, 0.3))
        return half_len * shrink, half_wid * shrink
    shrink = math.sqrt(max(1 - (plan.cut / (half_len * 1.05)) ** 2, 0.3))
    return half_wid * shrink, thick * shrink


def _hydronephrosis(
    rng: np.random.Generator,
    scene: Scene,
    rho: np.ndarray,
    phi: np.ndarray,
    grade: int,
    u: np.ndarray,
    v: np.ndarray,
    a: float,
    b: float,
) -> None:
    """Anechoic pelvis and calyces; higher grades dilate them and thin the cortex."""
    pelvis = np.sqrt((u / (a * (0.25 + 0.12 * grade))) ** 2 + (v / (b * (0.18 + 0.1 * grade))) ** 2)
    fluid = pelvis < 1.0
    calyx_r = 0.1 + 0.06 * grade
    for k in range(int(rng.integers(4, 7))):
        ang = k * 2 * math.pi / 6 + rng.uniform(-0.3, 0.3)
        cu, cv = 0.55 * math.cos(ang), 0.5 * math.sin(ang)
        calyx = np.hypot(u / a - cu, v / b - cv) < calyx_r
        neck = np.abs((u / a) * math.sin(ang) - (v / b) * math.cos(ang)) < 0.04 + 0.02 * grade
        fluid |= calyx | (neck & (rho < 0.55) & ((u / a) * math.cos(ang) + (v / b) * math.sin(ang) > 0))
    scene.paint(fluid & (rho < 0.95), anatomy.FLUID_ECHO, anatomy.FLUID_ATTEN)


def kidney_view(
    rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """A long-axis or transverse kidney frame, under the liver (right) or bowel (left); returns the
    end points (cm) of the kidney's major axis, where calipers would go."""
    s = scene.sector
    kidney = exam.kidneys[plan.side]
    cx, cz = rng.uniform(-1.5, 1.5), top + rng.uniform(4.0, 6.0)
    angle = rng.uniform(-0.45, 0.45)
    if plan.side == "right":  # the liver lies over the right kidney (hepatorenal window)
        edge = cz + rng.uniform(-1.0, 0.5) + np.tan(angle) * (s.x - cx) + 0.03 * (s.x - cx) ** 2
        anatomy.liver(rng, scene, top, exam, diaphragm=False, within=s.z < edge)
    else:
        anatomy.bowel(rng, scene, s.z > top)
    if kidney.finding == "absent":  # empty renal fossa: fat and bowel where the kidney was
        fossa = anatomy.ellipse(s, cx, cz, 5.0, 2.5, angle) < 1.0
        scene.paint(fossa, anatomy.textured(rng, scene, 0.5, 0.7, 18), anatomy.TISSUE_ATTEN)
        anatomy.bowel(rng, scene, fossa)
        return None
    a, b = section_axes(kidney, plan)
    c, sn = math.cos(angle), math.sin(angle)
    dx, dz = s.x - cx, s.z - cz
    u, v = dx * c + dz * sn, -dx * sn + dz * c
    bend = 0.12 if plan.view == "long" else 0.0
    v = v + bend * b * (u / a) ** 2  # bean curvature
    mass_bulge = np.zeros_like(u)
    for sec in plan.sections:
        if sec.lesion.kind == "mass":  # a solid mass deforms the contour
            mass_bulge = np.maximum(mass_bulge, sec.radius * 1.1 - np.hypot(u - sec.p, v - sec.q))
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    rho = np.where(mass_bulge > 0, np.minimum(rho, 0.95), rho)
    phi = np.arctan2(v / b, u / a)
    if plan.view == "transverse":  # the hilum opens medially
        hilum = (np.cos(phi - math.pi / 2) > 0.85) & (rho > 0.6) & (rho < 1.05)
        rho = np.where(hilum, 0.3, rho)
    sinus_scale = (0.72, 0.36) if plan.view == "long" else (0.45, 0.45)
    sinus = np.sqrt(
        (u / (a * sinus_scale[0])) ** 2
        + ((v - (0.15 * b if plan.view == "transverse" else 0)) / (b * sinus_scale[1])) ** 2
    )
    anatomy.kidney_parenchyma(rng, scene, rho, phi, sinus, atrophic=kidney.finding == "atrophy")
    if kidney.finding == "hydronephrosis":
        _hydronephrosis(rng, scene, rho, phi, kidney.grade, u, v, a, b)
    for sec in plan.sections:
        echo, atten = LESION_LOOK[sec.lesion.kind]
        dist = np.hypot(u - sec.p, v - sec.q) / sec.radius
        if sec.lesion.kind == "cyst":
            scene.paint(dist < 1.08, 0.9)
        if sec.lesion.kind == "mass":
            echo = anatomy.textured(rng, scene, echo, 0.9, 24)
        scene.paint(dist < 1.0, echo, atten)
    return (cx - a * c, cz - a * sn), (cx + a * c, cz + a * sn)
