"""The clustering stage's configuration: one dataclass, saved beside its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.training.trainer import TrainerConfig


@dataclass
class ClusterConfig:
    """`epochs` overrides `trainer.max_epochs`; `select` (an organ, or None) writes selected.csv."""

    clusters: int = 24  # K; over-clustering (2-3x the organs) helps, K = #organs did worst
    epochs: int = 30
    image_size: int = 96
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    alpha: float = 2.0  # symmetric Dirichlet concentration of the cluster-size prior
    consistency_weight: float = 1.0
    prior_weight: float = 1.0
    entropy_weight: float = 0.0
    encoder: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="tiny"))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    mapping: str = "auto"  # auto (hungarian when K == #organs, else majority), majority, hungarian
    select: str | None = "kidney"
    montage_frames: int = 16
    workers: int = 1  # frame preprocessing processes
    seed: int = 0


def demo_config() -> ClusterConfig:
    """Fast CPU setting for the end-to-end demo: ~150 exams at 64 px, about a minute on 2 cores."""
    return ClusterConfig(image_size=64, epochs=20, batch_size=64)  # smaller batches: more steps, same compute
