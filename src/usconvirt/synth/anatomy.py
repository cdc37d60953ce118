"""Echogenicity maps of each organ view: abdominal wall, liver with vessels, gallbladder, pancreas,
spleen, aorta, bladder, bowel and the kidney (capsule, cortex, medullary pyramids, echogenic sinus).

Echo values are scatterer amplitudes relative to bright tissue (1.0); attenuation is in nepers/cm.
"""

from __future__ import annotations

import math

import numpy as np

from usconvirt.synth.bmode import Scene, Sector, smooth_noise
from usconvirt.synth.exam import ExamState
from usconvirt.synth.protocol import FramePlan

TISSUE_ATTEN = 0.35
FLUID_ATTEN = 0.02
FLUID_ECHO = 0.008
BLOOD_ECHO = 0.024  # flowing blood scatters a little more than urine or bile
LIVER_ECHO = 0.32

FAR = 99.0  # normalised radius / distance given to samples outside a shape's band of rows


def ellipse(sector: Sector, cx: float, cz: float, a: float, b: float, angle: float = 0.0) -> np.ndarray:
    """Normalised radius of every sample in an ellipse centred at (cx, cz), semi-axes a, b, rotated;
    computed only on the rows near the ellipse (FAR elsewhere), which keeps rendering fast."""
    reach = 1.6 * max(a, b)
    band = sector.rows(cz - reach, cz + reach)
    c, s = math.cos(angle), math.sin(angle)
    dx, dz = sector.x[band] - cx, sector.z[band] - cz
    u, v = dx * c + dz * s, -dx * s + dz * c
    out = np.full(sector.shape, FAR, np.float32)
    out[band] = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    return out


def segment_distance(
    sector: Sector, p0: tuple[float, float], p1: tuple[float, float], reach: float = 1.0
) -> np.ndarray:
    """Distance (cm) of every sample to the segment p0-p1 (FAR beyond `reach`): vessels, fascia."""
    (x0, z0), (x1, z1) = p0, p1
    band = sector.rows(min(z0, z1) - reach, max(z0, z1) + reach)
    x, z = sector.x[band], sector.z[band]
    dx, dz = x1 - x0, z1 - z0
    t = np.clip(((x - x0) * dx + (z - z0) * dz) / (dx * dx + dz * dz + 1e-9), 0, 1)
    out = np.full(sector.shape, FAR, np.float32)
    out[band] = np.hypot(x - x0 - t * dx, z - z0 - t * dz)
    return out


def textured(
    rng: np.random.Generator, scene: Scene, base: float, amount: float, cells: int = 10
) -> np.ndarray:
    """A heterogeneous echo map around `base` (parenchymal texture)."""
    return base * (1 + amount * smooth_noise(rng, scene.sector.shape, cells))


def background_tissue(rng: np.random.Generator, scene: Scene) -> None:
    """Heterogeneous deep tissue (fat, muscle, bowel wall) crossed by bright fascial planes."""
    s = scene.sector
    scene.echo[:] = textured(rng, scene, 0.22, 1.1, 6) * (1 + 0.4 * smooth_noise(rng, s.shape, 18))
    for _ in range(int(rng.integers(3, 8))):
        x0, z0 = rng.uniform(-8, 8), rng.uniform(2, s.depth_cm)
        angle, length = rng.uniform(-0.6, 0.6), rng.uniform(2, 9)
        dist = segment_distance(s, (x0, z0), (x0 + length * math.cos(angle), z0 + length * math.sin(angle)))
        scene.paint(dist < rng.uniform(0.06, 0.2), rng.uniform(0.5, 1.2))


def abdominal_wall(rng: np.random.Generator, scene: Scene) -> float:
    """Skin, fat with septa, muscle and peritoneum along the probe's curve; returns the wall's depth (cm)."""
    d = np.broadcast_to(scene.sector.d, scene.sector.shape)
    fat = rng.uniform(0.6, 2.2)
    muscle = fat + rng.uniform(0.6, 1.3)
    scene.paint(d < 0.25, 0.9)
    scene.paint((d >= 0.25) & (d < fat), textured(rng, scene, 0.14, 0.8, 14))
    septa = (d >= 0.25) & (d < fat) & (np.abs(np.sin(d * rng.uniform(5, 9) + scene.sector.x * 0.3)) < 0.12)
    scene.paint(septa, 0.55)
    scene.paint((d >= fat) & (d < muscle), textured(rng, scene, 0.22, 0.6, 14))
    stripes = (d >= fat) & (d < muscle) & (np.abs(np.sin((d - fat) * 14 + scene.sector.x * 0.5)) < 0.2)
    scene.paint(stripes, 0.5)
    scene.paint((d >= muscle) & (d < muscle + 0.18), 1.0)
    return muscle + 0.18


def vessels(rng: np.random.Generator, scene: Scene, region: np.ndarray, count: int, wall: float) -> None:
    """Anechoic vessels inside `region`, cut across (ovals) or along (short tubes), walls echogenic if
    `wall` > 0 (portal veins) or not (hepatic veins)."""
    xs, zs = scene.sector.x[region], scene.sector.z[region]
    if xs.size == 0:
        return
    for _ in range(count):
        i = int(rng.integers(xs.size))
        x0, z0 = float(xs[i]), float(zs[i])
        radius = rng.uniform(0.15, 0.6)
        if rng.random() < 0.5:
            rho = ellipse(
                scene.sector, x0, z0, radius * rng.uniform(1.0, 2.2), radius, rng.uniform(0, math.pi)
            )
            dist = rho * radius  # equals `radius` on the vessel wall, like a distance
        else:
            angle, length = rng.uniform(0, math.pi), rng.uniform(1.0, 4.0)
            x1, z1 = x0 + length * math.cos(angle), z0 + length * math.sin(angle)
            dist = segment_distance(scene.sector, (x0, z0), (x1, z1))
        if wall > 0 and rng.random() < 0.6:
            scene.paint(region & (dist < radius + 0.12), wall)
        scene.paint(region & (dist < radius), BLOOD_ECHO, FLUID_ATTEN)


def liver(
    rng: np.random.Generator,
    scene: Scene,
    top: float,
    exam: ExamState,
    diaphragm: bool = True,
    within: np.ndarray | None = None,
) -> np.ndarray:
    """Liver parenchyma below `top` (and `within` a mask) down to a curved diaphragm; steatosis brightens
    and attenuates it."""
    s = scene.sector
    steatosis = exam.liver == "steatosis"
    echo = LIVER_ECHO * (2.0 if steatosis else 1.0)
    atten = TISSUE_ATTEN * (1.45 if steatosis else 1.0)
    bottom = rng.uniform(10.5, 14.5) + 0.04 * (s.x - rng.uniform(-4, 4)) ** 2 if diaphragm else 99.0
    region = (s.z > top) & (s.z < bottom)
    if within is not None:
        region &= within
    scene.paint(region, textured(rng, scene, echo, 0.25), atten)
    vessels(rng, scene, region, int(rng.integers(3, 7)), wall=0.35 if steatosis else 0.8)
    if diaphragm:
        scene.paint((s.z >= bottom) & (s.z < bottom + 0.35), 1.6)
        scene.paint(s.z >= bottom + 0.35, textured(rng, scene, echo * 0.6, 0.4))
    return region


def kidney_parenchyma(
    rng: np.random.Generator,
    scene: Scene,
    rho: np.ndarray,
    phi: np.ndarray,
    sinus: np.ndarray,
    atrophic: bool,
) -> None:
    """Perirenal fat, capsule, cortex, pyramids and sinus of a kidney from its normalised coordinates:
    `rho` (1 at the capsule), `phi` (angle) and `sinus` (1 at the sinus border)."""
    scene.paint((rho >= 1.0) & (rho < 1.25), textured(rng, scene, 0.12 if atrophic else 0.5, 0.6, 16))
    cortex = 0.6 if atrophic else 0.19
    scene.paint(rho < 1.0, textured(rng, scene, cortex, 0.25, 16), TISSUE_ATTEN)
    if not atrophic:  # pyramids: dark triangles between cortex and sinus, base outwards
        lobes = int(rng.integers(5, 9))
        wedge = np.cos(lobes * phi + rng.uniform(0, 2 * math.pi) + 0.4 * smooth_noise(rng, rho.shape, 6))
        depth = (rho - 0.35) / 0.5
        pyramids = (sinus > 1.0) & (rho < 0.85) & (wedge > 0.2 + 0.6 * (1 - depth))
        scene.paint(pyramids, textured(rng, scene, 0.07, 0.4, 16))
    irregular = sinus + 0.12 * np.cos(6 * phi + rng.uniform(0, 6)) + 0.2 * smooth_noise(rng, rho.shape, 14)
    scene.paint(irregular < 1.0, textured(rng, scene, 0.95, 0.8, 24))
    scene.paint(np.abs(rho - 1.0) < 0.04, 0.9)


def bowel(rng: np.random.Generator, scene: Scene, region: np.ndarray) -> None:
    """Bowel loops: echogenic gas lines casting dirty shadows, inside `region`."""
    s = scene.sector
    for _ in range(int(rng.integers(2, 5))):
        cx, cz = rng.uniform(-6, 6), rng.uniform(3, 12)
        rho = ellipse(s, cx, cz, rng.uniform(1.0, 2.5), rng.uniform(0.6, 1.4), rng.uniform(-0.5, 0.5))
        scene.paint(region & (rho < 1.0), textured(rng, scene, 0.3, 0.6, 16))
        gas = region & (np.abs(rho - 0.55) < 0.12) & (s.z < cz)
        scene.paint(gas, 2.2, 1.6)


def liver_view(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """A liver view; the frame aimed at a liver nodule shows it (hyperechoic with a dark halo)."""
    region = liver(rng, scene, top, exam)
    if plan.target:
        radius = exam.nodule_cm / 2
        cx, cz = rng.uniform(-3, 3), top + rng.uniform(3, 6)
        rho = ellipse(scene.sector, cx, cz, radius, radius * rng.uniform(0.8, 1.0))
        scene.paint(region & (rho < 1.15), 0.12)
        scene.paint(region & (rho < 1.0), textured(rng, scene, 0.9, 0.5, 24))


def bowel_view(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    bowel(rng, scene, scene.sector.z > top)


def gallbladder(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """Liver with the pear-shaped anechoic gallbladder; stones lie in its dependent part with shadows."""
    s = scene.sector
    liver(rng, scene, top, exam)
    cx, cz = rng.uniform(-2.5, 2.5), rng.uniform(5.5, 8.0)
    a, b, angle = rng.uniform(3.0, 4.5), rng.uniform(1.2, 1.8), rng.uniform(-0.5, 0.5)
    rho = ellipse(s, cx, cz, a, b, angle) - 0.1 * np.clip((s.x - cx) / a, 0, 1)  # pear: a wider fundus
    scene.paint(rho < 1.08, 0.9)
    scene.paint(rho < 1.0, FLUID_ECHO, FLUID_ATTEN)
    if exam.gallbladder == "stones":
        size = max(exam.stone_mm / 10, 0.6)
        for _ in range(int(rng.integers(1, 4))):
            sx = cx + rng.uniform(-0.4, 0.4) * a
            stone = ellipse(s, sx, cz + b * 0.7 - size / 2, size / 2, size / 2.5)
            scene.paint(stone < 1.0, 2.5, 3.0)


def pancreas(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """Transverse epigastric view: left liver lobe, pancreas over the splenic vein, aorta, vertebra."""
    s = scene.sector
    liver(rng, scene, top, exam, diaphragm=False)
    base, shift = rng.uniform(5.0, 8.0), rng.uniform(-2.5, 2.5)  # probe placement varies
    curve = base + 0.05 * (s.x - shift) ** 2 * rng.uniform(0.3, 1.5) + rng.uniform(-0.15, 0.15) * s.x
    thick = rng.uniform(1.3, 2.6)
    band = (s.z > curve - thick) & (s.z < curve) & (np.abs(s.x - shift) < rng.uniform(5, 9))
    scene.paint(band, textured(rng, scene, rng.uniform(0.35, 0.65), 0.6, 20), TISSUE_ATTEN)
    vein = (s.z >= curve) & (s.z < curve + rng.uniform(0.3, 0.7)) & (np.abs(s.x - shift) < rng.uniform(3, 6))
    scene.paint(vein, FLUID_ECHO, FLUID_ATTEN)
    radius = exam.aorta_mm / 20
    ao = ellipse(s, shift + rng.uniform(-1.5, 0.5), base + rng.uniform(2.0, 3.5), radius, radius)
    scene.paint(ao < 1.15, 0.9)
    scene.paint(ao < 1.0, FLUID_ECHO, FLUID_ATTEN)
    spine_z = base + rng.uniform(5.5, 7.5)
    spine = ellipse(s, shift, spine_z, rng.uniform(2.2, 3.5), 1.2)
    # vertebral body: a bright arc casting a shadow
    scene.paint((np.abs(spine - 1.0) < 0.15) & (s.z < spine_z), 2.0, 3.0)


def spleen(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """A homogeneous crescent under the diaphragm, longer with splenomegaly; bowel around it."""
    s = scene.sector
    bowel(rng, scene, s.z > top)
    length = exam.spleen_cm / 2
    cx, cz = rng.uniform(-1.5, 1.5), top + rng.uniform(3.5, 5.0) + length * 0.15
    angle = rng.uniform(-0.6, -0.2)
    rho = ellipse(s, cx, cz, length, length * rng.uniform(0.35, 0.45), angle)
    crescent = (rho < 1.0) & (ellipse(s, cx + 1.5, cz + 2.5, length, length * 0.4, angle) > 1.0)
    scene.paint(crescent, textured(rng, scene, 0.42, 0.15, 14), TISSUE_ATTEN)
    edge = (np.abs(rho - 1.0) < 0.04) & (s.z < cz)
    scene.paint(edge, 1.4)


def aorta(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """Long-axis aorta: an anechoic tube with bright walls over the shadowing vertebral bodies."""
    s = scene.sector
    bowel(rng, scene, s.z < top + 4)
    radius = exam.aorta_mm / 20
    cz, tilt, bend = rng.uniform(6.0, 10.0), rng.uniform(-0.25, 0.25), rng.uniform(-0.03, 0.03)
    axis = cz + tilt * s.x + bend * s.x**2
    scene.paint(np.abs(s.z - axis) < radius + 0.15, 0.9)
    scene.paint(np.abs(s.z - axis) < radius, FLUID_ECHO, FLUID_ATTEN)
    spine_top = axis + radius + rng.uniform(1.2, 2.0)
    bumps = spine_top + 0.3 * np.abs(np.sin(s.x * rng.uniform(0.7, 0.9)))
    scene.paint((s.z > bumps) & (s.z < bumps + 0.4), 2.0, 4.0)


def bladder(rng: np.random.Generator, scene: Scene, exam: ExamState, plan: FramePlan, top: float) -> None:
    """A full bladder: rounded anechoic box with a bright wall and strong posterior enhancement."""
    s = scene.sector
    cx, cz = rng.uniform(-1, 1), rng.uniform(5.5, 8.0)
    a, b = rng.uniform(3.0, 5.0), rng.uniform(2.2, 3.5)
    rho = (np.abs((s.x - cx) / a) ** 3 + np.abs((s.z - cz) / b) ** 3) ** (1 / 3)
    scene.paint(rho < 1.08, 0.8)
    scene.paint(rho < 1.0, FLUID_ECHO, FLUID_ATTEN)
    behind = ellipse(s, cx, cz + b + 1.8, 2.0, 1.5)
    scene.paint(behind < 1.0, textured(rng, scene, 0.35, 0.4, 14))
