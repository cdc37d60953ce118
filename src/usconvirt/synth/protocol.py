"""The scanning protocol: which freeze frames an exam has, and which kidney findings each frame cuts.

Visibility rule (the source of the paper's label noise): a kidney frame is a plane through the kidney,
a long-axis view at elevation `cut` or a transverse view at position `cut` along the long axis (cm,
kidney coordinates). A focal lesion (a sphere) shows on the frame when the plane cuts it with a section
radius of at least half its radius, i.e. |distance from plane to centre| <= 0.87 * radius. Diffuse
findings (hydronephrosis, atrophy) show on every frame of that kidney. The sonographer aims the first
long-axis frame of a kidney with focal lesions at one of them, so every focal finding shows on at least
one frame; other frames may miss it and still carry the kidney's 'abnormal' label. After a nephrectomy
the empty renal fossa is imaged: organ 'other', label 'absent' (there is no kidney in the frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usconvirt.synth.exam import FOCAL, ExamState, KidneyState, Lesion

VISIBLE_SECTION = 0.5  # minimum section radius / lesion radius for a lesion to show


@dataclass
class Section:
    """A lesion as cut by a frame: centre in the frame's kidney plane (cm) and section radius (cm)."""

    lesion: Lesion
    p: float
    q: float
    radius: float


@dataclass
class FramePlan:
    """One freeze frame to render: organ, side, view and, for a kidney, the lesions it shows."""

    organ: str
    side: str = ""
    view: str = ""
    cut: float = 0.0
    sections: list[Section] = field(default_factory=list)
    target: bool = False  # a liver frame aimed at the nodule
    calipers: bool = False

    def label(self, exam: ExamState) -> str:
        """The paper's frame annotation: the kidney's state for kidney frames, 'absent' otherwise."""
        if self.organ != "kidney":
            return "absent"
        return "abnormal" if exam.kidneys[self.side].abnormal else "normal"

    def finding_visible(self, exam: ExamState) -> bool:
        """Whether this frame shows its kidney's abnormality (always false for normal kidneys)."""
        if self.organ != "kidney" or not exam.kidneys[self.side].abnormal:
            return False
        return exam.kidneys[self.side].finding not in FOCAL or bool(self.sections)


def sections(kidney: KidneyState, view: str, cut: float) -> list[Section]:
    """The lesions a long-axis (plane w=cut) or transverse (plane u=cut) view shows."""
    out = []
    for lesion in kidney.lesions:
        dist = lesion.w - cut if view == "long" else lesion.u - cut
        if abs(dist) <= lesion.radius * np.sqrt(1 - VISIBLE_SECTION**2):
            p, q = (lesion.u, lesion.v) if view == "long" else (lesion.v, lesion.w)
            out.append(Section(lesion, p, q, float(np.sqrt(lesion.radius**2 - dist**2))))
    return out


def _kidney_frames(rng: np.random.Generator, kidney: KidneyState) -> list[FramePlan]:
    if kidney.finding == "absent":  # the empty renal fossa: no kidney in the frame, so labelled 'absent'
        return [FramePlan("other", kidney.side, "renal_fossa")]
    frames = []
    half_len = kidney.length_cm / 2
    counts = {
        "long": int(rng.choice([1, 2], p=[0.5, 0.5])),
        "transverse": int(rng.choice([0, 1, 2], p=[0.35, 0.5, 0.15])),
    }
    for view in ("long", "transverse"):
        for i in range(counts[view]):
            if view == "long" and i == 0 and kidney.lesions:
                cut = kidney.lesions[int(rng.integers(len(kidney.lesions)))].w + rng.uniform(-0.2, 0.2)
            elif view == "long":
                cut = rng.uniform(-1.3, 1.3)
            else:
                cut = rng.uniform(-0.6, 0.6) * half_len
            frames.append(
                FramePlan(
                    "kidney",
                    kidney.side,
                    view,
                    float(cut),
                    sections(kidney, view, cut),
                    calipers=view == "long" and rng.random() < 0.35,
                )
            )
    return frames


def plan_frames(rng: np.random.Generator, exam: ExamState) -> list[FramePlan]:
    """The exam's freeze frames in scanning order (about 8 to 16)."""
    frames = [
        FramePlan("liver", view="liver", target=i == 0 and exam.liver == "nodule")
        for i in range(int(rng.integers(2, 5)))
    ]
    if exam.gallbladder != "removed":
        frames += [FramePlan("gallbladder", view="gallbladder") for _ in range(int(rng.integers(1, 3)))]
    if rng.random() < 0.8:
        frames.append(FramePlan("pancreas", view="pancreas"))
    frames.append(FramePlan("spleen", view="spleen"))
    if rng.random() < 0.4:
        frames.append(FramePlan("aorta", view="aorta"))
    for side in ("right", "left"):
        frames += _kidney_frames(rng, exam.kidneys[side])
    if rng.random() < 0.7:
        frames.append(FramePlan("bladder", view="bladder"))
    if rng.random() < 0.1:
        frames.append(FramePlan("other", view="bowel"))
    while len(frames) < 8:  # a short exam gets another liver view
        frames.insert(1, FramePlan("liver", view="liver"))
    while len(frames) > 16:  # drop extra liver views first, never a kidney view
        frames.pop(
            1
            if frames[1].organ == "liver"
            else next(i for i, f in enumerate(frames) if f.organ in ("aorta", "pancreas", "gallbladder"))
        )
    return frames
