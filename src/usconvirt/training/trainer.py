"""One Trainer set-up for every stage: devices, DDP, precision, checkpoints every N steps, resume."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

log = logging.getLogger(__name__)


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


def last_checkpoint(out_dir: str | Path) -> Path | None:
    """The checkpoint a resumed run continues from, if any."""
    path = Path(out_dir) / "checkpoints" / "last.ckpt"
    return path if path.exists() else None


def build_trainer(
    config: TrainerConfig,
    out_dir: str | Path,
    *,
    callbacks: list[Callback] | None = None,
    enable_validation: bool = True,
) -> L.Trainer:
    """A Trainer writing `out_dir/checkpoints/last.ckpt` and CSV logs under `out_dir/logs`."""
    out_dir = Path(out_dir)
    checkpoint = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=config.checkpoint_every_n_steps or None,
        save_on_train_epoch_end=True,
    )
    devices = int(config.devices) if str(config.devices).isdigit() else config.devices
    return L.Trainer(
        max_epochs=config.max_epochs,
        max_steps=config.max_steps,
        max_time=config.max_time,
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision=config.precision,
        accumulate_grad_batches=config.accumulate_grad_batches,
        log_every_n_steps=config.log_every_n_steps,
        enable_progress_bar=config.progress_bar,
        enable_model_summary=False,
        logger=CSVLogger(out_dir, name="logs", version=""),
        callbacks=[checkpoint, *(callbacks or [])],
        limit_val_batches=None if enable_validation else 0,
        default_root_dir=out_dir,
        deterministic=False,
    )


def fit(trainer: L.Trainer, module: L.LightningModule, out_dir: str | Path, *, resume: bool = True,
        **loaders) -> None:
    """Fit, continuing from out_dir's last checkpoint when `resume` and one exists."""
    ckpt = last_checkpoint(out_dir) if resume else None
    if ckpt is not None:
        log.info("resuming from %s", ckpt)
    trainer.fit(module, ckpt_path=ckpt, **loaders)
