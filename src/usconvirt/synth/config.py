"""Configuration of the synthetic corpus: size, seed, image format and the prevalence of every finding."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.config import COUNT, NOT_NEGATIVE, SHARE, check_fields
from usconvirt.errors import InputError

# How repetitive the reports are (resources/synth/report_phrases.yaml, report_styles): `varied`, many
# radiologists and paraphrases; `templated`, one hospital's house style with a few phrasings per finding.
REPORT_STYLES = ("varied", "templated")
SCANNER_MODELS = ("single", "families")  # render.scanner_families
FORMATS = ("png", "dicom")
SHARE_FIELD = {"range": SHARE}
KIDNEY_FINDINGS = ("cyst", "stone", "hydronephrosis", "atrophy", "mass", "angiomyolipoma", "absent")


@dataclass
class Prevalences:
    """How often each state occurs; kidney findings are drawn per abnormal side from `kidney_findings`."""

    # exams with at least one abnormal kidney (paper test set: 176/603)
    kidney_abnormal: float = field(default=0.30, metadata=SHARE_FIELD)
    both_sides: float = field(default=0.15, metadata=SHARE_FIELD)  # of abnormal exams, both kidneys abnormal
    kidney_findings: dict[str, float] = field(  # relative weights of a weighted draw
        metadata={"range": NOT_NEGATIVE},
        default_factory=lambda: {
            "cyst": 0.30,
            "stone": 0.22,
            "hydronephrosis": 0.18,
            "atrophy": 0.12,
            "mass": 0.07,
            "angiomyolipoma": 0.07,
            "absent": 0.04,
        }
    )
    liver_steatosis: float = field(default=0.20, metadata=SHARE_FIELD)
    liver_nodule: float = field(default=0.06, metadata=SHARE_FIELD)
    gallbladder_stones: float = field(default=0.12, metadata=SHARE_FIELD)
    cholecystectomy: float = field(default=0.05, metadata=SHARE_FIELD)
    splenomegaly: float = field(default=0.06, metadata=SHARE_FIELD)


@dataclass
class SynthConfig:
    """Everything `generate_corpus` needs; the same config and seed give the same corpus."""

    exams: int = field(default=200, metadata={"range": COUNT})
    seed: int = 0
    image_size: int = field(default=256, metadata={"range": "[32, inf)"})
    format: str = field(default="png", metadata={"choices": FORMATS})
    workers: int = field(default=1, metadata={"range": COUNT})
    prevalences: Prevalences = field(default_factory=Prevalences)
    # reports that also describe an organ without a frame
    mention_unimaged: float = field(default=0.25, metadata=SHARE_FIELD)
    # reports that leave out a non-kidney organ that was imaged
    omit_imaged: float = field(default=0.20, metadata=SHARE_FIELD)
    report_style: str = field(default="varied", metadata={"choices": REPORT_STYLES})
    # single: one simulated scanner (every synthetic study in docs/results.md); families: two scanner
    # families after the real frames of ../shared/data/real (closer to them, docs/synthetic-corpus.md)
    scanners: str = field(default="single", metadata={"choices": SCANNER_MODELS})
    overwrite: bool = False

    def __post_init__(self) -> None:
        check_fields(self, source="synth config")
        unknown = set(self.prevalences.kidney_findings) - set(KIDNEY_FINDINGS)
        if unknown:
            raise InputError(
                f"unknown kidney finding(s) {sorted(unknown)}; expected some of {', '.join(KIDNEY_FINDINGS)}",
                field="prevalences.kidney_findings",
            )
