"""Truncated GCE with Zhang & Sabuncu's schedule (NeurIPS 2018, "L_trunc", Algorithm 1).

L_trunc(p, y) = L_q(p_y) for a kept sample and the constant L_q(k) for a pruned one, so pruned samples
(p_y <= k: likely mislabeled) give no gradient. Which samples are pruned is decided by the trainer, not
at every step: nothing is pruned during a warm-up (at the start every sample has p_y near 1/C, and with
two classes and k = 0.5 about half the frames, every misclassified one, would stop contributing from
step 0), then the pruning mask is recomputed every few epochs on the whole training set
(`FinetuneConfig.tgce_warmup_epochs`, `tgce_prune_every`).
"""

from __future__ import annotations

import torch
from torch import nn

from usconvirt.losses.gce import class_weighted_mean, gce_per_sample


class ScheduledTruncatedGCE(nn.Module):
    """GCE where the samples of `keep == False` (indexed by dataset position) contribute the floor L_q(k)."""

    def __init__(self, n_samples: int, q: float = 0.7, k: float = 0.5,
                 weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if not 0.0 < k < 1.0:
            raise ValueError(f"truncated GCE needs k in (0, 1), got {k}")
        self.q, self.k = q, k
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("keep", torch.ones(n_samples, dtype=torch.bool))

    def forward(self, logits: torch.Tensor, target: torch.Tensor,
                index: torch.Tensor | None = None) -> torch.Tensor:
        loss = gce_per_sample(logits, target, self.q)
        if index is not None:
            floor = torch.full_like(loss, (1.0 - self.k ** self.q) / self.q)
            loss = torch.where(self.keep[index], loss, floor)
        return class_weighted_mean(loss, self.weight, target)
