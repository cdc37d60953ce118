"""The evaluation stages' settings: one default for the bootstrap, shared by the CLI and the pipeline,
and the label-efficiency study's; importable without torch or matplotlib."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.config import COUNT, check_fields
from usconvirt.training.config import FinetuneConfig

BOOTSTRAP = {"range": COUNT, "help": "Patient bootstrap resamples for the 95% intervals."}
FRACTIONS = {"range": "(0, 1]"}  # shares of the training frames, each a run of the study


@dataclass
class EvaluationConfig:
    """Patient-bootstrap resamples for every interval, and the seed that makes two runs' intervals paired."""

    n_bootstrap: int = field(default=1000, metadata=BOOTSTRAP)
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})


@dataclass
class LabelEfficiencyConfig:
    """Training fractions, and fine-tuning settings shared by every run (init and fraction set per run)."""

    fractions: tuple[float, ...] = field(default=(0.01, 0.1, 1.0), metadata=FRACTIONS)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    n_bootstrap: int = field(default=1000, metadata=BOOTSTRAP)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self, source="label efficiency config")
