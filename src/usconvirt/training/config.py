"""The training stages' settings: trainer, pre-training and fine-tuning configs, importable without
Lightning or torch, so that a pipeline config validates in well under a second."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from usconvirt.config import COUNT, NOT_NEGATIVE, SHARE
from usconvirt.data.config import AugmentConfig
from usconvirt.errors import InputError
from usconvirt.models.config import PRESETS, ConVIRTConfig, ImageEncoderConfig, TextEncoderConfig

LOSSES = ("gce", "tgce", "ce")
CLASS_BALANCES = ("sampler", "weights", "none")
# f1_at_half: the checkpoint of best validation macro-F1 at P(abnormal) >= 0.5; auc_then_threshold: the
# checkpoint of best validation ROC AUC, then the threshold of best validation macro-F1 (training/finetune.py)
PROTOCOLS = ("f1_at_half", "auc_then_threshold")
LOGGERS = ("csv", "tensorboard", "mlflow")  # training/monitoring.py builds each
TEXT_PADDINGS = ("longest", "buckets", "max_length")  # training/fast_step.py's pad_tokens
EQUIVALENCES = ("none", "identical", "findings")  # training/equivalent_texts.py
NO_LIMIT = "[-1, inf)"  # Lightning's max_epochs / max_steps: -1 is no limit
# The names Lightning 2.6's Trainer accepts, written out so that checking a config imports no Lightning
# (tests/pipeline/test_config_validation.py holds them to the installed Lightning's). Lightning checks
# them only when a stage builds its Trainer, after the stages before it have run.
# "auto", "gpu" and lightning.pytorch.accelerators.AcceleratorRegistry.available_accelerators()
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
# lightning.fabric.plugins.precision.precision: _PRECISION_INPUT_STR, then _PRECISION_INPUT_STR_ALIAS, the
# older names Lightning maps onto them (a YAML `precision: 16` is read as "16")
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "64", "32", "16", "bf16")
# "auto" and lightning.pytorch.strategies.StrategyRegistry.available_strategies()
STRATEGIES = (
    "auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook",
    "ddp_find_unused_parameters_false", "ddp_find_unused_parameters_true",
    "ddp_spawn_find_unused_parameters_false", "ddp_spawn_find_unused_parameters_true",
    "ddp_fork_find_unused_parameters_false", "ddp_fork_find_unused_parameters_true",
    "ddp_notebook_find_unused_parameters_false", "ddp_notebook_find_unused_parameters_true",
    "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_2_offload", "deepspeed_stage_3",
    "deepspeed_stage_3_offload", "deepspeed_stage_3_offload_nvme",
    "fsdp", "fsdp_cpu_offload", "single_device", "single_xla", "xla_debug", "xla", "single_tpu",
)
# The formats Lightning parses when it builds the Trainer: lightning.pytorch.callbacks.timer.Timer's
# duration, and lightning.fabric.utilities.device_parser's devices string (a count, -1 for all, or indices;
# a count of 0 parses, but every accelerator refuses it: GPU 0 alone is "0,")
MAX_TIME = re.compile(r"\d+:\d\d:\d\d:\d\d")
DEVICES = re.compile(r"auto|-1|0*[1-9]\d*|\d+(\s*,\s*\d+)+\s*,?|\d+\s*,")


@dataclass
class TrainerConfig:
    """Fields map onto lightning.Trainer; DDP runs under torchrun or SLURM with strategy='ddp'."""

    # -1: no limit (Lightning's)
    max_epochs: int = field(default=10, metadata={"range": NO_LIMIT})
    max_steps: int = field(default=-1, metadata={"range": NO_LIMIT})
    max_time: str | None = None  # "DD:HH:MM:SS": stop after this much training time (a stage's budget)
    accelerator: str = field(default="auto", metadata={"choices": ACCELERATORS})
    devices: str = "auto"
    num_nodes: int = field(default=1, metadata={"range": COUNT})
    strategy: str = field(default="auto", metadata={"choices": STRATEGIES})
    # "bf16-mixed" or "16-mixed" on GPU
    precision: str = field(default="32-true", metadata={"choices": PRECISIONS})
    accumulate_grad_batches: int = field(default=1, metadata={"range": COUNT})
    # 0: every `checkpoint_every_n_epochs` epochs
    checkpoint_every_n_steps: int = field(default=0, metadata={"range": NOT_NEGATIVE})
    # 0: only at the end (and on SIGTERM, or by the minute below)
    checkpoint_every_n_epochs: int = field(default=1, metadata={"range": NOT_NEGATIVE})
    # also every this many minutes of training (0: off): at GPU speed, N steps can be a few seconds
    checkpoint_every_minutes: float = field(default=0.0, metadata={"range": NOT_NEGATIVE})
    # write checkpoints in a background thread from a copy of the state taken at the step, so training
    # goes on while the file is written (Lightning's AsyncCheckpointIO)
    async_checkpoint: bool = False
    log_every_n_steps: int = field(default=10, metadata={"range": NOT_NEGATIVE})
    progress_bar: bool = True
    logger: str = field(default="csv", metadata={"choices": LOGGERS})
    mlflow_uri: str | None = None  # logger mlflow: tracking URI; None: RUN/mlruns
    cudnn_benchmark: bool = False  # cuDNN times its kernels for each input shape once, keeps the fastest
    seed: int = 0

    def check(self) -> None:
        """Lightning reads these only when a stage builds its Trainer, after the stages before it ran."""
        if self.max_time is not None and not MAX_TIME.fullmatch(self.max_time.strip()):
            raise InputError(f"expected DD:HH:MM:SS (days, hours, minutes, seconds), got '{self.max_time}'",
                             field="max_time")
        if not DEVICES.fullmatch(str(self.devices).strip()):
            raise InputError(f"expected auto, a count of at least 1, -1 (every GPU) or GPU indices such as "
                             f"0,1 (GPU 0 alone: '0,'), got '{self.devices}'", field="devices")


@dataclass
class PretrainConfig:
    """ConVIRT's published settings (Zhang et al., MLHC 2022, as reused by Dadoun et al., ISBI 2023);
    `epochs`/`max_steps` override the trainer's."""

    retired: ClassVar[tuple[str, ...]] = ("multiple_instance", "max_sentences", "same_exam_positives",
                                          "normal_positives", "image_ssl_weight")

    image: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="resnet50",
                                                                                  weights="imagenet"))
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = field(default=512, metadata={"range": COUNT})
    tau: float = field(default=0.1, metadata={"range": "(0, inf)"})  # softmax temperature
    lam: float = field(default=0.75, metadata={"range": SHARE})  # image-to-text share of the loss
    # the loss's negatives come from all devices
    batch_size: int = field(default=32, metadata={"range": COUNT, "help": "Batch size per device."})
    lr: float = field(default=1e-4, metadata={"range": NOT_NEGATIVE})
    weight_decay: float = field(default=1e-6, metadata={"range": NOT_NEGATIVE})
    optimizer: Literal["adam", "adamw"] = "adam"
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: after a linear warm-up
    warmup_steps: int = field(default=0, metadata={"range": NOT_NEGATIVE})
    epochs: int = field(default=10, metadata={"range": COUNT, "help": "Training epochs."})
    max_steps: int = field(default=-1, metadata={"range": NO_LIMIT,
                                                  "help": "Most optimizer steps (-1: run the epochs)."})
    image_size: int = field(default=224, metadata={"range": COUNT, "help": "Input image size in pixels."})
    sample_sentence: bool = True  # one sentence per step, uniformly; else all sentences joined
    shuffle_texts: bool = False  # control: each exam's sentences go to another exam's frames
    # texts that say the same thing share their targets instead of being negatives (docs/pretraining.md):
    # none (ConVIRT), identical (equal once normalised), findings (equal organ, side, abnormal per sentence)
    equivalent_texts: str = field(default="none", metadata={"choices": EQUIVALENCES})
    # weight of a GCE term (q = 0.7) on each frame's weak label read from its report (weak_labels.py),
    # through its own linear head, discarded after training; unknown labels add nothing. 0: off.
    report_label_weight: float = field(default=0.0, metadata={"range": NOT_NEGATIVE})
    # exams kept out of training for the retrieval diagnostic
    heldout_fraction: float = field(default=0.05, metadata={"range": "[0, 1)"})
    num_workers: int = field(default=2, metadata={"range": NOT_NEGATIVE})
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    # Speed (docs/pretraining.md, "Speed on a GPU"). Pairs per softmax: None, the whole batch (gathered
    # over ranks), ConVIRT's loss at batch 32; 32 keeps the paper's 32-way loss at any physical batch.
    contrastive_group: int | None = field(default=None, metadata={"range": "[2, inf)"})
    group_across_ranks: bool = False  # DDP: groups cut from the gathered batch, not from each rank's own
    channels_last: bool = False  # NHWC weights and frames (tensor cores' layout); same values
    fused_optimizer: bool = False  # one fused Adam/AdamW kernel, on CUDA only
    # longest: pad to each batch's longest text; buckets: to the next of 16, 32, 64, ... max_length
    # (a few shapes, for cudnn.benchmark and torch.compile); max_length: one fixed shape
    text_padding: str = field(default="longest", metadata={"choices": TEXT_PADDINGS})
    compile: bool = False  # torch.compile both encoders (first steps slower while it compiles)

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
        "choices": tuple(PRESETS), "help": f"Encoder for init random: {', '.join(PRESETS)}."})
    loss: str = field(default="gce", metadata={
        "choices": LOSSES, "help": "gce (q=0.7), tgce (truncated GCE, floor at k=0.5) or ce."})
    q: float = field(default=0.7, metadata={"range": "(0, 1]"})
    k: float = field(default=0.5, metadata={"range": "(0, 1)"})
    # tgce: plain GCE for these epochs, then prune samples with p_y <= k
    tgce_warmup_epochs: int = field(default=5, metadata={"range": NOT_NEGATIVE})
    # tgce: recompute the pruning mask every this many epochs
    tgce_prune_every: int = field(default=5, metadata={"range": COUNT})
    epochs: int = field(default=30, metadata={"range": COUNT,
                                              "help": "Most epochs (early stopping may end sooner)."})
    batch_size: int = field(default=32, metadata={"range": COUNT})
    lr: float = field(default=1e-4, metadata={"range": NOT_NEGATIVE})
    weight_decay: float = field(default=1e-6, metadata={"range": NOT_NEGATIVE})
    image_size: int = field(default=224, metadata={"range": COUNT, "help": "Input image size in pixels."})
    train_fraction: float = field(default=1.0, metadata={"range": "(0, 1]",
        "help": "Share of the labeled training frames used (stratified by label, at least one frame per "
                "class), e.g. 0.01, 0.1, 1."})
    # epochs without a better validation score (the protocol's) before stopping
    patience: int = field(default=5, metadata={"range": COUNT})
    protocol: str = field(default="f1_at_half", metadata={
        "choices": PROTOCOLS, "help": "f1_at_half: checkpoint by validation macro-F1 at threshold 0.5; "
                                      "auc_then_threshold: checkpoint by validation ROC AUC, then the "
                                      "threshold of best validation macro-F1."})
    # sampler: class-balanced draws; weights: inverse-frequency loss weights
    class_balance: str = field(default="sampler", metadata={"choices": CLASS_BALANCES})
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    # processes for the first preprocessing of frames
    workers: int = field(default=1, metadata={"range": NOT_NEGATIVE})
    cache_dir: str | None = None  # frame cache; default DATASET/.usconvirt-cache
    # GPU speed (docs/finetuning.md): loader processes feeding uint8 frames (pinned on a GPU), NHWC
    # convolutions, and the selected weights kept as a CPU copy instead of a best.ckpt file
    loader_workers: int = field(default=0, metadata={"range": NOT_NEGATIVE})
    channels_last: bool = False
    best_in_memory: bool = False
