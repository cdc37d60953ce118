"""The evaluation stage's settings: one default for the bootstrap, shared by the CLI and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EvaluationConfig:
    """Patient-bootstrap resamples for every interval, and the seed that makes two runs' intervals paired."""

    n_bootstrap: int = 1000
    seed: int = 0
