"""SimCLR's NT-Xent loss against a direct transcription of its formula."""

from __future__ import annotations

import math

import pytest
import torch

from usconvirt.losses.nt_xent import nt_xent_loss


def loop_loss(a: torch.Tensor, b: torch.Tensor, tau: float) -> float:
    z = torch.nn.functional.normalize(torch.cat([a, b]).double(), dim=1).tolist()
    n2, n = len(z), len(a)
    sim = [[sum(x * y for x, y in zip(z[i], z[j], strict=True)) / tau for j in range(n2)] for i in range(n2)]
    total = 0.0
    for i in range(n2):
        p = (i + n) % n2
        total += -math.log(math.exp(sim[i][p]) / sum(math.exp(sim[i][k]) for k in range(n2) if k != i))
    return total / n2


@pytest.mark.parametrize(("n", "d", "tau"), [(2, 3, 0.1), (5, 8, 0.5), (7, 4, 1.0)])
def test_nt_xent_matches_the_formula(n: int, d: int, tau: float) -> None:
    a, b = torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)
    assert nt_xent_loss(a, b, tau).item() == pytest.approx(loop_loss(a, b, tau), rel=1e-9)


def test_matching_views_score_below_unrelated_ones() -> None:
    a = torch.randn(8, 16)
    assert nt_xent_loss(a, a + 0.01 * torch.randn(8, 16)) < nt_xent_loss(a, torch.randn(8, 16))
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(torch.randn(4, 8), torch.randn(3, 8))
