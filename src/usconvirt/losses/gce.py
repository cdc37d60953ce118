"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018): a loss robust to noisy labels.

L_q(p, y) = (1 - p_y^q) / q, with q in (0, 1]. As q -> 0 it tends to cross-entropy (-log p_y); at
q = 1 it is 1 - p_y, half the mean absolute error |onehot(y) - p|_1 = 2 (1 - p_y). The paper fine-tunes
its kidney classifier with it because report-derived and clinical labels are noisy.

The truncated variant floors the loss at L_q(k) for samples whose p_y <= k: they contribute a constant,
hence no gradient, so confidently "wrong" (likely mislabeled) samples stop pulling the model. The
original paper implements this with per-sample weights refreshed every few epochs; here the floor is
evaluated at every step, which is the same objective without the bookkeeping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_q(q: float) -> None:
    if not 0.0 < q <= 1.0:
        raise ValueError(f"GCE needs q in (0, 1], got {q}")


def _reduce(loss: torch.Tensor, weight: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch, weighted by per-class `weight` like F.cross_entropy does."""
    if weight is None:
        return loss.mean()
    w = weight[target]
    return (loss * w).sum() / w.sum()


def gce_per_sample(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    """(1 - p_y^q) / q for each sample, from logits (B, C) and class indices (B,)."""
    _check_q(q)
    log_p = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    # -expm1(q log p) / q == (1 - p^q) / q, accurate even for tiny q (where it approaches -log p).
    return -torch.expm1(q * log_p) / q


def generalized_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    q: float = 0.7,
    *,
    k: float | None = None,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean GCE over a batch; `k` in (0, 1) switches on the truncated variant, `weight` weighs classes."""
    loss = gce_per_sample(logits, target, q)
    if k is not None:
        if not 0.0 < k < 1.0:
            raise ValueError(f"truncated GCE needs k in (0, 1), got {k}")
        p_y = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        floor = (1.0 - k**q) / q
        loss = torch.where(p_y > k, loss, torch.full_like(loss, floor))
    return _reduce(loss, weight, target)


class GeneralizedCrossEntropy(nn.Module):
    """Module form of `generalized_cross_entropy`; `k=None` is plain GCE, a float is the truncated loss."""

    def __init__(self, q: float = 0.7, k: float | None = None, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        _check_q(q)
        self.q, self.k = q, k
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_cross_entropy(logits, target, self.q, k=self.k, weight=self.weight)
