"""Ground truth of one exam: the state of every organ, kidney lesions placed in 3-D kidney coordinates."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usconvirt.synth.config import Prevalences

SIDES = ("right", "left")
FOCAL = ("cyst", "stone", "mass", "angiomyolipoma")


@dataclass
class Lesion:
    """A focal kidney lesion: a sphere at (u along the long axis, v across, w in elevation), in cm."""

    kind: str
    u: float
    v: float
    w: float
    radius: float


@dataclass
class KidneyState:
    """One kidney: its finding ('normal' or one of config.KIDNEY_FINDINGS), size and lesions."""

    side: str
    finding: str = "normal"
    length_cm: float = 11.0
    width_cm: float = 5.5
    grade: int = 0
    lesions: list[Lesion] = field(default_factory=list)

    @property
    def abnormal(self) -> bool:
        return self.finding != "normal"


@dataclass
class ExamState:
    """Every organ's ground-truth state for one exam."""

    exam_id: str
    patient_id: str
    exam_date: str
    initials: str
    age: int
    kidneys: dict[str, KidneyState]
    liver: str = "normal"  # normal | steatosis | nodule
    liver_span_cm: float = 14.0
    nodule_cm: float = 0.0
    gallbladder: str = "normal"  # normal | stones | removed
    stone_mm: float = 0.0
    spleen: str = "normal"  # normal | splenomegaly
    spleen_cm: float = 10.5
    aorta_mm: float = 18.0

    @property
    def kidney_abnormal(self) -> bool:
        return any(k.abnormal for k in self.kidneys.values())


def _weighted_choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.asarray([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _lesion(rng: np.random.Generator, kind: str, kidney: KidneyState) -> Lesion:
    half = kidney.length_cm / 2
    if kind == "stone":  # stones sit in the collecting system, near the sinus
        return Lesion(
            kind,
            rng.uniform(-0.6, 0.6) * half,
            rng.uniform(-0.4, 0.4),
            rng.uniform(-0.5, 0.5),
            rng.uniform(0.25, 0.6),
        )
    radius = {"cyst": (0.9, 2.4), "mass": (1.3, 2.6), "angiomyolipoma": (0.7, 1.4)}[kind]
    return Lesion(
        kind,
        rng.uniform(-0.65, 0.65) * half,
        rng.choice([-1, 1]) * rng.uniform(0.8, 1.8),
        rng.uniform(-1.2, 1.2),
        rng.uniform(*radius),
    )


def sample_kidney(rng: np.random.Generator, side: str, finding: str) -> KidneyState:
    """A kidney with the given finding, its size and lesions drawn at random."""
    kidney = KidneyState(
        side=side, finding=finding, length_cm=rng.uniform(9.8, 12.2), width_cm=rng.uniform(4.8, 6.0)
    )
    if finding == "atrophy":
        kidney.length_cm, kidney.width_cm = rng.uniform(6.8, 8.6), rng.uniform(3.4, 4.2)
    elif finding == "hydronephrosis":
        kidney.grade = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
    elif finding in FOCAL:
        count = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])) if finding in ("cyst", "stone") else 1
        kidney.lesions = [_lesion(rng, finding, kidney) for _ in range(count)]
    return kidney


def sample_exam(
    rng: np.random.Generator,
    prev: Prevalences,
    exam_id: str,
    patient_id: str,
    exam_date: str,
    initials: str,
    age: int,
    previous: ExamState | None = None,
) -> ExamState:
    """Draw one exam's organ states; a nephrectomy or cholecystectomy carries over to later exams."""
    findings = {side: "normal" for side in SIDES}
    if rng.random() < prev.kidney_abnormal:
        sides = list(SIDES) if rng.random() < prev.both_sides else [SIDES[int(rng.integers(2))]]
        for side in sides:
            findings[side] = _weighted_choice(rng, prev.kidney_findings)
        if all(f == "absent" for f in findings.values()):  # a living patient keeps one kidney
            findings["left"] = "cyst"
    if previous is not None:
        for side, kidney in previous.kidneys.items():
            if kidney.finding == "absent":
                findings[side] = "absent"
    exam = ExamState(
        exam_id=exam_id,
        patient_id=patient_id,
        exam_date=exam_date,
        initials=initials,
        age=age,
        kidneys={side: sample_kidney(rng, side, findings[side]) for side in SIDES},
    )
    exam.liver_span_cm = round(rng.uniform(12.0, 16.0), 1)
    u = rng.random()
    if u < prev.liver_nodule:
        exam.liver, exam.nodule_cm = "nodule", round(rng.uniform(1.2, 3.5), 1)
    elif u < prev.liver_nodule + prev.liver_steatosis:
        exam.liver = "steatosis"
    u = rng.random()
    if (previous is not None and previous.gallbladder == "removed") or u < prev.cholecystectomy:
        exam.gallbladder = "removed"
    elif u < prev.cholecystectomy + prev.gallbladder_stones:
        exam.gallbladder, exam.stone_mm = "stones", round(rng.uniform(5, 22))
    if rng.random() < prev.splenomegaly:
        exam.spleen, exam.spleen_cm = "splenomegaly", round(rng.uniform(13.5, 17.5), 1)
    else:
        exam.spleen_cm = round(rng.uniform(8.5, 12.0), 1)
    exam.aorta_mm = round(rng.uniform(15, 23))
    return exam
