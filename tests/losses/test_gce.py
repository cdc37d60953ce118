"""Generalized cross-entropy against its formula and its limits (q -> 0: CE; q = 1: MAE / 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from usconvirt.losses.gce import GeneralizedCrossEntropy, gce_per_sample, generalized_cross_entropy
from usconvirt.losses.truncated_gce import ScheduledTruncatedGCE


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 2, generator=g) * 3, torch.randint(0, 2, (16,), generator=g)


def test_matches_formula(batch):
    logits, target = batch
    p_y = F.softmax(logits, 1)[torch.arange(16), target]
    for q in (0.3, 0.7, 1.0):
        expected = (1 - p_y**q) / q
        assert torch.allclose(gce_per_sample(logits, target, q), expected, atol=1e-6)
        assert torch.allclose(generalized_cross_entropy(logits, target, q), expected.mean(), atol=1e-6)


def test_small_q_is_cross_entropy(batch):
    logits, target = batch
    ce = F.cross_entropy(logits, target)
    gce = generalized_cross_entropy(logits, target, q=1e-4)
    assert torch.allclose(gce, ce, rtol=1e-3)
    assert not torch.allclose(generalized_cross_entropy(logits, target, q=0.7), ce, rtol=1e-2)


def test_q_one_is_half_mae(batch):
    logits, target = batch
    mae = (F.one_hot(target, 2).float() - F.softmax(logits, 1)).abs().sum(1)
    assert torch.allclose(gce_per_sample(logits, target, q=1.0), mae / 2, atol=1e-6)


def test_gradient_matches_autograd_of_formula(batch):
    logits, target = batch
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    generalized_cross_entropy(a, target, 0.7).backward()
    p_y = F.softmax(b, 1)[torch.arange(16), target]
    ((1 - p_y**0.7) / 0.7).mean().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-6)


def test_truncated_gce_floors_pruned_samples(batch):
    logits, target = batch
    q, k = 0.7, 0.5
    p_y = F.softmax(logits, 1)[torch.arange(16), target]
    assert (p_y <= k).any() and (p_y > k).any()
    expected = torch.where(p_y > k, (1 - p_y**q) / q, torch.tensor((1 - k**q) / q))
    truncated = ScheduledTruncatedGCE(16, q, k)
    truncated.keep.copy_(p_y > k)  # what the schedule's pruning step sets
    assert torch.allclose(truncated(logits, target, torch.arange(16)), expected.mean(), atol=1e-6)
    x = logits.clone().requires_grad_(True)
    truncated(x, target, torch.arange(16)).backward()
    assert torch.all(x.grad[p_y <= k] == 0) and torch.any(x.grad[p_y > k] != 0)


def test_class_weights_like_cross_entropy(batch):
    logits, target = batch
    weight = torch.tensor([0.3, 2.0])
    per = gce_per_sample(logits, target, 0.7)
    expected = (per * weight[target]).sum() / weight[target].sum()
    loss = GeneralizedCrossEntropy(0.7, weight=weight)(logits, target)
    assert torch.allclose(loss, expected, atol=1e-6)
    near_ce = GeneralizedCrossEntropy(1e-4, weight=weight)(logits, target)
    assert torch.allclose(near_ce, F.cross_entropy(logits, target, weight=weight), rtol=1e-3)


@pytest.mark.parametrize("q", [0.0, -0.1, 1.5])
def test_rejects_q_outside_range(q):
    with pytest.raises(ValueError, match="q in"):
        GeneralizedCrossEntropy(q)
