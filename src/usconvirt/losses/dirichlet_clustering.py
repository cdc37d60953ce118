"""Two-view clustering loss with a symmetric Dirichlet prior on cluster sizes (Dadoun et al., J. Med.
Imaging 10(3):034502, 2023).

The exact loss of Dadoun et al. is not public; this is the documented reading (docs/clustering.md):
  consistency = -(1/N) sum_i log <p(x_i^a), p(x_i^b)>   both views in the same cluster, confidently;
  prior       = -log Dir(pbar; alpha)                   pbar = mean assignment over the batch (both views);
  entropy     = (1/2N) sum_i H(p(x_i))                  optional sharpening of each assignment.
Everything is computed from logits in log space, so probabilities near 0 give no nan or inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def consistency_loss(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """-mean_i log sum_k p_a[i,k] p_b[i,k]: low only when both views agree with high probability."""
    joint = F.log_softmax(logits_a, dim=1) + F.log_softmax(logits_b, dim=1)
    return -torch.logsumexp(joint, dim=1).mean()


def mean_log_assignment(logits: torch.Tensor) -> torch.Tensor:
    """log of the batch-mean cluster distribution pbar, (K,), computed stably from (N, K) logits."""
    return torch.logsumexp(F.log_softmax(logits, dim=1), dim=0) - math.log(logits.shape[0])


def dirichlet_prior_loss(log_pbar: torch.Tensor, alpha: float) -> torch.Tensor:
    """Negative log density of a symmetric Dirichlet(alpha) at pbar; alpha > 1 penalises emptying clusters."""
    k = log_pbar.shape[0]
    log_norm = math.lgamma(k * alpha) - k * math.lgamma(alpha)
    return -(log_norm + (alpha - 1.0) * log_pbar.sum())


def assignment_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the per-image cluster distributions; minimising it sharpens assignments."""
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


@dataclass
class DirichletClusteringLoss:
    """Weighted sum of the three terms; returns the total and each term (for logging)."""

    alpha: float = 2.0
    consistency_weight: float = 1.0
    prior_weight: float = 1.0
    entropy_weight: float = 0.0

    def __call__(self, logits_a: torch.Tensor, logits_b: torch.Tensor) -> dict[str, torch.Tensor]:
        if logits_a.shape != logits_b.shape or logits_a.dim() != 2:
            raise ValueError(f"expected two (N, K) logits of the same shape, got {tuple(logits_a.shape)} "
                             f"and {tuple(logits_b.shape)}")
        both = torch.cat([logits_a, logits_b])
        terms = {
            "consistency": consistency_loss(logits_a, logits_b),
            "prior": dirichlet_prior_loss(mean_log_assignment(both), self.alpha),
            "entropy": assignment_entropy(both),
        }
        terms["loss"] = (self.consistency_weight * terms["consistency"] + self.prior_weight * terms["prior"]
                         + self.entropy_weight * terms["entropy"])
        return terms
