"""The deep clustering schedule: steps (not epochs) with a floor, a batch that fits the data, and an
unsupervised stop once the assignments of a fixed probe set no longer change."""

from __future__ import annotations

import logging
import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


def plan_steps(frames: int, batch_size: int, epochs: int, min_steps: int) -> tuple[int, int]:
    """(batch, max_steps): the batch capped at half the frames (so an epoch has at least 2 full batches),
    and epochs' worth of steps but at least `min_steps`: few frames still get enough updates."""
    batch = max(2, min(batch_size, frames // 2))
    per_epoch = max(1, frames // batch)  # drop_last
    return batch, max(min_steps, epochs * per_epoch)


class StableAssignments(Callback):
    """Stops training when, `patience` checks in a row, fewer than `tolerance` of the probe frames changed
    cluster since the previous check and at least `min_used` clusters are used. Reads pixels only."""

    def __init__(self, probe: torch.Tensor, every_n_steps: int, tolerance: float, patience: int,
                 min_steps: int, min_used: int) -> None:
        self.probe, self.every, self.tolerance, self.patience = probe, every_n_steps, tolerance, patience
        self.min_steps, self.min_used = min_steps, min_used
        self.previous: torch.Tensor | None = None
        self.calm = 0
        self.reason = "step budget reached"

    @torch.no_grad()
    def _assign(self, module: L.LightningModule) -> torch.Tensor:
        was_training = module.training
        module.eval()
        out = torch.cat([module(chunk.to(module.device)).argmax(1).cpu() for chunk in self.probe.split(256)])
        module.train(was_training)
        return out

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.every <= 0 or step % self.every:
            return
        current = self._assign(module)
        used = int(current.unique().numel())
        if self.previous is not None:
            changed = float((current != self.previous).float().mean())
            self.calm = self.calm + 1 if changed <= self.tolerance and used >= self.min_used else 0
            log.debug("step %d: %.2f%% of probe frames changed cluster, %d clusters used", step,
                      100 * changed, used)
        self.previous = current
        if self.calm >= self.patience and step >= self.min_steps:
            self.reason = (f"assignments stable ({self.patience} checks of {self.every} steps, "
                           f"<= {100 * self.tolerance:.1f}% changed, {used} clusters used)")
            trainer.should_stop = True


def min_used_clusters(k: int) -> int:
    """A run that uses fewer than a third of its clusters has not formed them yet."""
    return max(2, math.ceil(k / 3))
