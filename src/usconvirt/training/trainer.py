"""One Trainer set-up for every stage: devices, DDP, precision, checkpoints every N steps or minutes,
resume, and the logger (CSV, TensorBoard or MLflow, training/monitoring.py).

A checkpoint is bound to the fingerprint of the config that made it: a resume under another config
starts fresh (the old checkpoints moved aside), so a changed setting never silently continues an old
run and a changed shape never reaches the user as a traceback. SIGTERM and SIGINT end `fit` with
`usconvirt.errors.Interrupted`, not with Lightning's exit code 0 or 1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from usconvirt.config import config_hash
from usconvirt.data.progress import format_duration
from usconvirt.errors import Interrupted
from usconvirt.io import read_json_or_empty
from usconvirt.run_state import current_stage_key
from usconvirt.training.config import TrainerConfig
from usconvirt.training.monitoring import build_logger, monitoring_callbacks

log = logging.getLogger(__name__)

FINGERPRINT = "fingerprint.json"
PREVIOUS_METRICS = "metrics.previous.csv"


class MinuteProgress(Callback):
    """One log line a minute (step, loss, rate, time left) where a progress bar would reach no terminal."""

    def __init__(self, label: str, interval: float = 60.0) -> None:
        self.label, self.interval = label, interval

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start = self._last = time.monotonic()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        now = time.monotonic()
        if now - self._last < self.interval or not trainer.is_global_zero:
            return
        self._last = now
        step, total = trainer.global_step, trainer.estimated_stepping_batches
        rate = (step - self._first_step) / max(now - self._start, 1e-9)
        left = (total - step) / rate if rate > 0 and total != float("inf") else float("inf")
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        loss_text = f", loss {float(loss):.4f}" if isinstance(loss, torch.Tensor) else ""
        log.info("%s: step %d/%s%s, %.2f steps/s, %s left", self.label, step,
                 total if total != float("inf") else "?", loss_text, rate, format_duration(left))


class LastCheckpoint(ModelCheckpoint):
    """`last.ckpt` alone (save_top_k 0): on its epoch, step or minute trigger, at the end and on SIGTERM."""

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        # Lightning (2.6) writes last.ckpt at an epoch's end only after a top-k save, which save_top_k=0
        # never makes: without this a killed run would find no checkpoint before its very end.
        super().on_train_epoch_end(trainer, module)
        epochs = self._every_n_epochs
        due = epochs >= 1 and (trainer.current_epoch + 1) % epochs == 0
        due = due and self._should_save_on_train_epoch_end(trainer)
        if due and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        # SIGTERM stops the loop between two steps, so the state saved is a consistent one.
        if isinstance(exception, SIGTERMException) and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


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
    _set_aside_metrics(out_dir / "logs")
    # Earlier log rows are kept aside and joined back after fit, and a checkpoint directory holds only
    # checkpoints of this config (fit checks the fingerprint), so Lightning's two warnings are moot.
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
    checkpoints = [LastCheckpoint(
        dirpath=out_dir / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=config.checkpoint_every_n_steps or None,
        every_n_epochs=None if config.checkpoint_every_n_steps else config.checkpoint_every_n_epochs,
        save_on_train_epoch_end=True,
    )]
    if config.checkpoint_every_minutes > 0:
        # Lightning takes one trigger per callback: a second one for the clock, writing the same last.ckpt
        checkpoints.append(ModelCheckpoint(
            dirpath=out_dir / "checkpoints", save_last=True, save_top_k=0, save_on_train_epoch_end=False,
            train_time_interval=timedelta(minutes=config.checkpoint_every_minutes)))
    devices = int(config.devices) if str(config.devices).isdigit() else config.devices
    # Under nohup or a batch job a bar prints only its final state: log a line a minute instead.
    bar = config.progress_bar and sys.stderr.isatty()
    progress = [] if bar else [MinuteProgress(out_dir.name)]
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
        enable_progress_bar=bar,
        enable_model_summary=False,
        logger=build_logger(config.logger, out_dir, config.mlflow_uri),
        callbacks=[*checkpoints, *progress, *monitoring_callbacks(), *(callbacks or [])],
        plugins=[AsyncCheckpointIO()] if config.async_checkpoint else None,
        benchmark=True if config.cudnn_benchmark else None,
        limit_val_batches=None if enable_validation else 0,
        default_root_dir=out_dir,
        deterministic=False,
    )


def fit(trainer: L.Trainer, module: L.LightningModule, out_dir: str | Path, *, resume: bool = True,
        **loaders) -> None:
    """Fit, continuing from out_dir's last checkpoint when `resume`, one exists and it was made by the
    same config (its fingerprint: a hash of `module.config` and the module's tensor shapes)."""
    out_dir = Path(out_dir)
    fingerprint = module_fingerprint(module)
    ckpt = last_checkpoint(out_dir) if resume else None
    if ckpt is not None and not _resumable(ckpt, module, fingerprint):
        ckpt = None
    _write_fingerprint(out_dir / "checkpoints", fingerprint, trainer)
    if ckpt is not None:
        log.info("resuming from %s", ckpt)
    try:
        trainer.fit(module, ckpt_path=ckpt, **loaders)
    except SIGTERMException:
        raise Interrupted(signal.SIGTERM, checkpoint=last_checkpoint(out_dir)) from None
    except SystemExit as stop:
        # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1).
        if trainer.interrupted:
            raise Interrupted(signal.SIGINT, checkpoint=last_checkpoint(out_dir)) from None
        raise stop
    finally:
        if trainer.is_global_zero:
            _join_metrics(out_dir / "logs")
    if trainer.received_sigterm:
        raise Interrupted(signal.SIGTERM, checkpoint=last_checkpoint(out_dir))


def module_fingerprint(module: L.LightningModule) -> str:
    """The config the module was built from (when it keeps one as `.config`) and its tensor shapes."""
    config = getattr(module, "config", None)
    config = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else repr(config)
    shapes = {k: list(v.shape) for k, v in module.state_dict().items()}
    # Inside `usconvirt run`, the stage's config and input fingerprints bind the checkpoint too.
    return config_hash({"module": type(module).__name__, "config": config, "shapes": shapes,
                        "stage": current_stage_key.get()})


def _resumable(ckpt: Path, module: L.LightningModule, fingerprint: str) -> bool:
    recorded = read_json_or_empty(ckpt.parent / FINGERPRINT).get("fingerprint")
    reason = None
    if recorded != fingerprint:
        reason = "its config differs from this run's" if recorded else "it records no config fingerprint"
    else:
        try:
            # mmap: only the shapes are needed here, so the tensors are not read into memory
            saved = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)["state_dict"]
        except Exception as err:  # a truncated or foreign file: not something to resume from
            reason = f"it cannot be read ({type(err).__name__})"
        else:
            current = module.state_dict()
            if {k: tuple(v.shape) for k, v in saved.items()} != {k: tuple(v.shape) for k, v in
                                                                 current.items()}:
                reason = "its tensor shapes differ from this model's"
    if reason is None:
        return True
    aside = ckpt.parent.with_name(f"{ckpt.parent.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
    ckpt.parent.rename(aside)
    log.warning("not resuming from %s: %s; starting fresh (old checkpoints moved to %s)", ckpt, reason, aside)
    return False


def _write_fingerprint(directory: Path, fingerprint: str, trainer: L.Trainer) -> None:
    if trainer.is_global_zero:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / FINGERPRINT).write_text(json.dumps({"fingerprint": fingerprint}))


def _set_aside_metrics(log_dir: Path) -> None:
    """Lightning's CSV logger deletes metrics.csv when it starts: keep the earlier rows aside."""
    current = log_dir / "metrics.csv"
    if current.exists():
        previous = log_dir / PREVIOUS_METRICS
        frames = [pd.read_csv(p) for p in (previous, current) if p.exists() and p.stat().st_size]
        if frames:
            pd.concat(frames, ignore_index=True).to_csv(previous, index=False)
        current.unlink()


def _join_metrics(log_dir: Path) -> None:
    """metrics.csv holds every attempt's rows, earlier attempts first."""
    previous, current = log_dir / PREVIOUS_METRICS, log_dir / "metrics.csv"
    if not previous.exists():
        return
    frames = [pd.read_csv(p) for p in (previous, current) if p.exists() and p.stat().st_size]
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(current, index=False)
    previous.unlink()
