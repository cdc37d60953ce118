"""The weights of the best validation score so far, kept as a CPU copy instead of a checkpoint file.

At GPU speed a fine-tuning epoch over a few thousand frames takes seconds, and writing a ResNet50's
weights and Adam moments to disk at every improvement costs as much; a copy in memory costs a device-to-
host transfer of the weights alone. The price: a run killed and resumed forgets the best before the kill
(it selects among the epochs it saw since).
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class BestWeights(Callback):
    """After each validation, copy the module's weights when `monitor` improved (strictly, as
    ModelCheckpoint's top-1); `restore` puts the best back and gives its epoch."""

    def __init__(self, monitor: str, mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"expected mode max or min, got {mode!r}")
        self.monitor, self.sign = monitor, 1.0 if mode == "max" else -1.0
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None:
            return
        score = float(score)
        if self.best_score is None or self.sign * score > self.sign * self.best_score:
            self.best_score, self.best_epoch = score, int(trainer.current_epoch)
            self._state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}

    def restore(self, module: L.LightningModule) -> int | None:
        if self._state is None:
            return None
        module.load_state_dict(self._state)
        return self.best_epoch
