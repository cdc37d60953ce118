"""The evaluation stages' settings: one default for the bootstrap, shared by the CLI and the pipeline,
and the label-efficiency study's; importable without torch or matplotlib."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.errors import InputError
from usconvirt.training.config import FinetuneConfig


@dataclass
class EvaluationConfig:
    """Patient-bootstrap resamples for every interval, and the seed that makes two runs' intervals paired."""

    n_bootstrap: int = field(default=1000, metadata={
        "help": "Patient bootstrap resamples for the 95% intervals."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})


@dataclass
class LabelEfficiencyConfig:
    """Training fractions, and fine-tuning settings shared by every run (init and fraction set per run)."""

    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    n_bootstrap: int = 1000  # patient resamples for the intervals
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [f for f in self.fractions if not 0.0 < f <= 1.0]
        if bad:
            raise InputError(f"fractions must lie in (0, 1], got {bad}", field="fractions")
        if self.n_bootstrap < 1:
            raise InputError(f"expected at least 1 bootstrap resample, got {self.n_bootstrap}",
                             field="n_bootstrap")
