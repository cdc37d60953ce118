"""Generalized cross-entropy (Zhang & Sabuncu, NeurIPS 2018): a loss robust to noisy labels.

L_q(p, y) = (1 - p_y^q) / q, with q in (0, 1]. As q -> 0 it tends to cross-entropy (-log p_y); at
q = 1 it is 1 - p_y, half the mean absolute error |onehot(y) - p|_1 = 2 (1 - p_y). The paper fine-tunes
its kidney classifier with it because report-derived and clinical labels are noisy. The truncated
variant, with the paper's pruning schedule, is `truncated_gce.py`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_q(q: float) -> None:
    if not 0.0 < q <= 1.0:
        raise ValueError(f"GCE needs q in (0, 1], got {q}")


def class_weighted_mean(loss: torch.Tensor, weight: torch.Tensor | None,
                        target: torch.Tensor) -> torch.Tensor:
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


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7, *,
                              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean GCE over a batch; `weight` weighs classes."""
    return class_weighted_mean(gce_per_sample(logits, target, q), weight, target)


class GeneralizedCrossEntropy(nn.Module):
    """Module form of `generalized_cross_entropy`."""

    def __init__(self, q: float = 0.7, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        _check_q(q)
        self.q = q
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return generalized_cross_entropy(logits, target, self.q, weight=self.weight)
