"""The grouped ConVIRT loss: G groups of g pairs score as the mean of G separate g-way ConVIRT losses."""

from __future__ import annotations

import math

import pytest
import torch

from usconvirt.losses.grouped_infonce import contrastive_chance, grouped_convirt_loss
from usconvirt.losses.infonce import convirt_loss
from usconvirt.training.fast_step import HostReads


def _separate(images: torch.Tensor, texts: torch.Tensor, g: int) -> torch.Tensor:
    losses = [convirt_loss(i, t) for i, t in zip(images.split(g), texts.split(g), strict=True) if len(i) > 1]
    return torch.stack(losses).mean()


@pytest.mark.parametrize(("groups", "g", "rest"), [(4, 32, 0), (3, 8, 5), (2, 8, 1)])
def test_grouped_loss_is_the_mean_of_separate_losses_values_and_gradients(groups: int, g: int,
                                                                          rest: int) -> None:
    torch.manual_seed(0)
    n = groups * g + rest
    images = torch.randn(n, 16, dtype=torch.float64, requires_grad=True)
    texts = torch.randn(n, 16, dtype=torch.float64, requires_grad=True)
    grouped = grouped_convirt_loss(images, texts, g)
    grad_grouped = torch.autograd.grad(grouped, (images, texts))
    separate = _separate(images, texts, g)
    grad_separate = torch.autograd.grad(separate, (images, texts))
    assert grouped.item() == pytest.approx(separate.item(), rel=1e-12)
    for a, b in zip(grad_grouped, grad_separate, strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    assert not torch.isclose(grouped, convirt_loss(images, texts))  # another loss than the full batch's


def test_chance_is_ln_of_the_group_at_any_batch() -> None:
    # identical embeddings everywhere: every candidate equally likely, the loss is ln(candidates)
    images = torch.ones(256, 8)
    assert float(grouped_convirt_loss(images, images.clone(), 32)) == pytest.approx(math.log(32), rel=1e-6)
    assert float(grouped_convirt_loss(images, images.clone(), None)) == pytest.approx(math.log(256), rel=1e-6)
    assert contrastive_chance(256, 32) == pytest.approx(math.log(32))
    assert contrastive_chance(256, None) == pytest.approx(math.log(256))
    assert contrastive_chance(16, 32) == pytest.approx(math.log(16))


def test_a_group_as_large_as_the_batch_is_convirt_loss() -> None:
    images, texts = torch.randn(32, 8), torch.randn(32, 8)
    assert torch.equal(grouped_convirt_loss(images, texts, 32), convirt_loss(images, texts))
    with pytest.raises(ValueError, match="at least 2"):
        grouped_convirt_loss(images, texts, 1)


def test_bf16_inputs_are_scored_in_float32() -> None:
    images, texts = torch.randn(64, 8), torch.randn(64, 8)
    low = grouped_convirt_loss(images.bfloat16(), texts.bfloat16(), 32)
    assert low.dtype == torch.float32
    assert float(low) == pytest.approx(float(grouped_convirt_loss(images, texts, 32)), rel=2e-2)


def test_grouped_loss_reads_nothing_back_to_the_host() -> None:
    images = torch.randn(96, 8, requires_grad=True)
    with HostReads() as reads:
        grouped_convirt_loss(images, torch.randn(96, 8), 32).backward()
    assert reads.count == 0
