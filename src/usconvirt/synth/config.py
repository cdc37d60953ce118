"""Configuration of the synthetic corpus: size, seed, image format and the prevalence of every finding."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.errors import InputError

# How repetitive the reports are (resources/synth/report_phrases.yaml, report_styles): `varied`, many
# radiologists and paraphrases; `templated`, one hospital's house style with a few phrasings per finding.
REPORT_STYLES = ("varied", "templated")
SCANNER_MODELS = ("single", "families")  # render.scanner_families
KIDNEY_FINDINGS = ("cyst", "stone", "hydronephrosis", "atrophy", "mass", "angiomyolipoma", "absent")


@dataclass
class Prevalences:
    """How often each state occurs; kidney findings are drawn per abnormal side from `kidney_findings`."""

    kidney_abnormal: float = 0.30  # exams with at least one abnormal kidney (paper test set: 176/603)
    both_sides: float = 0.15  # of abnormal exams, share with both kidneys abnormal
    kidney_findings: dict[str, float] = field(
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
    liver_steatosis: float = 0.20
    liver_nodule: float = 0.06
    gallbladder_stones: float = 0.12
    cholecystectomy: float = 0.05
    splenomegaly: float = 0.06


@dataclass
class SynthConfig:
    """Everything `generate_corpus` needs; the same config and seed give the same corpus."""

    exams: int = 200
    seed: int = 0
    image_size: int = 256
    format: str = "png"  # png | dicom
    workers: int = 1
    prevalences: Prevalences = field(default_factory=Prevalences)
    mention_unimaged: float = 0.25  # reports that also describe an organ without a frame
    omit_imaged: float = 0.20  # reports that leave out a non-kidney organ that was imaged
    report_style: str = field(default="varied", metadata={"choices": REPORT_STYLES})
    # single: one simulated scanner (every synthetic study in docs/results.md); families: two scanner
    # families after the real frames of ../shared/data/real (closer to them, docs/synthetic-corpus.md)
    scanners: str = field(default="single", metadata={"choices": SCANNER_MODELS})
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.exams < 1:
            raise InputError(f"exams must be >= 1, got {self.exams}", field="exams")
        if self.image_size < 32:
            raise InputError(f"image_size must be >= 32, got {self.image_size}", field="image_size")
        if self.format not in ("png", "dicom"):
            raise InputError(f"format must be png or dicom, got '{self.format}'", field="format")
        if self.report_style not in REPORT_STYLES:
            raise InputError(f"report_style must be one of {', '.join(REPORT_STYLES)}, got "
                             f"'{self.report_style}'", field="report_style")
        if self.scanners not in SCANNER_MODELS:
            raise InputError(f"scanners must be one of {', '.join(SCANNER_MODELS)}, got '{self.scanners}'",
                             field="scanners")
        if self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}", field="workers")
        unknown = set(self.prevalences.kidney_findings) - set(KIDNEY_FINDINGS)
        if unknown:
            raise InputError(
                f"unknown kidney finding(s) {sorted(unknown)}; expected some of {', '.join(KIDNEY_FINDINGS)}",
                field="prevalences.kidney_findings",
            )
