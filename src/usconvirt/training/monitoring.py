"""Where training curves go (`trainer.logger`: csv, tensorboard or mlflow) and what they hold beside the
losses: the learning rate and samples per second, both read on the host, so logging them never waits for
the GPU.

TensorBoard writes event files under RUN/logs (`tensorboard --logdir RUN/logs`). MLflow logs to
`trainer.mlflow_uri` (a tracking server, or `sqlite:///PATH` where SQLAlchemy is installed), by default a
local file store RUN/mlruns that needs no server (`mlflow ui --backend-store-uri RUN/mlruns`), experiment
`usconvirt`, one MLflow run per stage, named after the stage's directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger

from usconvirt.errors import InputError
from usconvirt.training.config import LOGGERS


def build_logger(kind: str, out_dir: Path, mlflow_uri: str | None = None) -> Logger:
    """The run's logger; CSV writes RUN/logs/metrics.csv, the others beside it."""
    if kind == "csv":
        return CSVLogger(out_dir, name="logs", version="")
    if kind == "tensorboard":
        return TensorBoardLogger(out_dir, name="logs", version="", default_hp_metric=False)
    if kind == "mlflow":
        try:
            import mlflow  # noqa: F401  (Lightning's MLFlowLogger imports it lazily, failing late)
        except ImportError as err:
            raise InputError("trainer.logger 'mlflow' needs the mlflow package (pip install "
                             "'usconvirt[mlflow]')", field="trainer.logger") from err
        uri = mlflow_uri
        if uri is None:
            uri = (out_dir.resolve() / "mlruns").as_uri()
            # MLflow 3 refuses a file store unless told it is wanted: it is, as the offline default
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        return MLFlowLogger(experiment_name="usconvirt", run_name=out_dir.name, tracking_uri=uri)
    raise InputError(f"unknown logger '{kind}', expected one of {', '.join(LOGGERS)}", field="trainer.logger")


class SamplesPerSecond(Callback):
    """train/samples_per_s at every logging step: samples since the last one over the wall time between.

    Host time only: the host runs at most a few steps ahead of the GPU, so over a logging interval the
    rate is the GPU's, and no step waits for a reading.
    """

    def __init__(self) -> None:
        self._since, self._samples = 0.0, 0

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._since, self._samples = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self._samples += _batch_size(batch) * trainer.world_size
        if trainer.global_step % max(1, trainer.log_every_n_steps) or not trainer.loggers:
            return
        now = time.perf_counter()
        rate = self._samples / max(now - self._since, 1e-9)
        for logger in trainer.loggers:
            logger.log_metrics({"train/samples_per_s": rate}, step=trainer.global_step)
        self._since, self._samples = now, 0


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if isinstance(batch, (list, tuple)):
        batch = batch[0]
    return len(batch)


class FinalMetrics(Callback):
    """Metrics computed once when training ends (`compute(module)` -> dict or None, on rank 0), logged
    beside the curves before the loggers close; `result` keeps them for the caller."""

    def __init__(self, compute, prefix: str) -> None:
        self.compute, self.prefix = compute, prefix
        self.result: dict | None = None

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self.result = self.compute(module)
        # "r@1" -> "r_at_1": MLflow refuses '@' in a metric name; one name in every logger
        numbers = {f"{self.prefix}/{k.replace('@', '_at_')}": float(v) for k, v in (self.result or {}).items()
                   if isinstance(v, (int, float))}
        for logger in trainer.loggers if numbers else []:
            logger.log_metrics(numbers, step=trainer.global_step)


def monitoring_callbacks() -> list[Callback]:
    """Learning rate (per step) and samples/s, logged with the losses."""
    return [LearningRateMonitor(logging_interval="step"), SamplesPerSecond()]
