"""The training stages' settings: trainer, pre-training and fine-tuning configs, importable without
Lightning or torch, so that a pipeline config validates in well under a second."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from usconvirt.data.config import AugmentConfig
from usconvirt.models.config import ConVIRTConfig, ImageEncoderConfig, TextEncoderConfig

LOSSES = ("gce", "tgce", "ce")
CLASS_BALANCES = ("sampler", "weights", "none")


@dataclass
class TrainerConfig:
    """Fields map onto lightning.Trainer; DDP runs under torchrun or SLURM with strategy='ddp'."""

    max_epochs: int = 10
    max_steps: int = -1
    max_time: str | None = None  # "DD:HH:MM:SS": stop after this much training time (a stage's budget)
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"  # "bf16-mixed" or "16-mixed" on GPU
    accumulate_grad_batches: int = 1
    checkpoint_every_n_steps: int = 0  # 0: once per epoch
    log_every_n_steps: int = 10
    progress_bar: bool = True
    seed: int = 0


@dataclass
class PretrainConfig:
    """ConVIRT's published settings (Zhang et al., MLHC 2022, as reused by Dadoun et al., ISBI 2023);
    `epochs`/`max_steps` override the trainer's."""

    retired: ClassVar[tuple[str, ...]] = ("multiple_instance", "max_sentences", "same_exam_positives",
                                          "normal_positives", "image_ssl_weight")

    image: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="resnet50",
                                                                                  weights="imagenet"))
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = 512
    tau: float = 0.1
    lam: float = 0.75
    # the loss's negatives come from all devices
    batch_size: int = field(default=32, metadata={"help": "Batch size per device."})
    lr: float = 1e-4
    weight_decay: float = 1e-6
    optimizer: Literal["adam", "adamw"] = "adam"
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: after a linear warm-up
    warmup_steps: int = 0
    epochs: int = field(default=10, metadata={"help": "Training epochs."})
    max_steps: int = field(default=-1, metadata={"help": "Most optimizer steps (-1: run the epochs)."})
    image_size: int = field(default=224, metadata={"help": "Input image size in pixels."})
    sample_sentence: bool = True  # one sentence per step, uniformly; else all sentences joined
    shuffle_texts: bool = False  # control: each exam's sentences go to another exam's frames
    heldout_fraction: float = 0.05  # exams kept out of training for the retrieval diagnostic
    num_workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0

    def model_config(self) -> ConVIRTConfig:
        return ConVIRTConfig(image=self.image, text=self.text, proj_dim=self.proj_dim,
                             image_size=self.image_size)


@dataclass
class FinetuneConfig:
    """Fine-tuning settings; `epochs` overrides `trainer.max_epochs`."""

    retired: ClassVar[tuple[str, ...]] = ("select_by",)

    init: str = field(default="random", metadata={
        "help": "random, imagenet, convirt:RUN/pretrain, or an image encoder directory."})
    arch: str = field(default="resnet50", metadata={  # the other inits bring their own architecture
        "help": "Encoder for init random: resnet50, resnet18, small, tiny."})
    loss: str = field(default="gce", metadata={
        "choices": LOSSES, "help": "gce (q=0.7), tgce (truncated GCE, floor at k=0.5) or ce."})
    q: float = 0.7
    k: float = 0.5
    tgce_warmup_epochs: int = 5  # tgce: plain GCE for these epochs, then prune samples with p_y <= k
    tgce_prune_every: int = 5  # tgce: recompute the pruning mask every this many epochs
    epochs: int = field(default=30, metadata={"help": "Most epochs (early stopping may end sooner)."})
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 1e-6
    image_size: int = field(default=224, metadata={"help": "Input image size in pixels."})
    train_fraction: float = field(default=1.0, metadata={
        "help": "Share of the labeled training frames used (stratified by label, at least one frame per "
                "class), e.g. 0.01, 0.1, 1."})
    patience: int = 5  # epochs without a better validation macro-F1 before stopping
    # sampler: class-balanced draws; weights: inverse-frequency loss weights
    class_balance: str = field(default="sampler", metadata={"choices": CLASS_BALANCES})
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    workers: int = 1  # processes for the first preprocessing of frames
    cache_dir: str | None = None  # frame cache; default DATASET/.usconvirt-cache
