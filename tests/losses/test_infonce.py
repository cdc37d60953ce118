"""The ConVIRT loss against a direct float64 transcription of section 4.2 of the paper (Dadoun et al.,
ISBI 2023)."""

from __future__ import annotations

import math

import pytest
import torch

from usconvirt.losses.infonce import convirt_loss


def loop_loss(images: torch.Tensor, texts: torch.Tensor, tau: float, lam: float) -> float:
    """L = 1/N sum_i (lam * L_i(I->T) + (1 - lam) * L_i(T->I)), written as the paper's sums."""
    images, texts = images.double().tolist(), texts.double().tolist()
    n = len(images)

    def cos(u: list[float], v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    sim = [[cos(images[i], texts[j]) / tau for j in range(n)] for i in range(n)]
    total = 0.0
    for i in range(n):
        image_to_text = -math.log(math.exp(sim[i][i]) / sum(math.exp(sim[i][j]) for j in range(n)))
        text_to_image = -math.log(math.exp(sim[i][i]) / sum(math.exp(sim[j][i]) for j in range(n)))
        total += lam * image_to_text + (1 - lam) * text_to_image
    return total / n


@pytest.mark.parametrize(("n", "d", "tau", "lam"), [(2, 3, 0.1, 0.75), (7, 16, 0.1, 0.75), (5, 8, 0.5, 0.3),
                                                     (4, 4, 1.0, 1.0), (6, 5, 0.07, 0.0)])
def test_loss_matches_the_formula(n: int, d: int, tau: float, lam: float) -> None:
    images, texts = torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)
    got = convirt_loss(images, texts, tau=tau, lam=lam).item()
    assert got == pytest.approx(loop_loss(images, texts, tau, lam), rel=1e-10, abs=1e-12)


def test_lambda_weights_the_image_to_text_term() -> None:
    images, texts = torch.randn(5, 8), torch.randn(5, 8)
    image_to_text, text_to_image = convirt_loss(images, texts, lam=1.0), convirt_loss(images, texts, lam=0.0)
    assert not torch.isclose(image_to_text, text_to_image)
    assert convirt_loss(images, texts, lam=0.75) == pytest.approx(0.75 * image_to_text + 0.25 * text_to_image)
    # swapping the modalities swaps the two directions
    assert convirt_loss(texts, images, lam=1.0) == pytest.approx(text_to_image.item())


def test_loss_ignores_norms_and_rewards_alignment() -> None:
    images = torch.randn(8, 16)
    # near-zero loss: a relative tolerance would test float32 rounding, not the normalisation
    assert convirt_loss(images, images * 3.0) == pytest.approx(convirt_loss(images, images).item(), abs=1e-5)
    assert convirt_loss(images, images) < convirt_loss(images, torch.randn(8, 16))


def test_loss_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        convirt_loss(torch.randn(4, 8), torch.randn(3, 8))


def test_loss_is_float32_under_bf16_autocast() -> None:
    images, texts = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = convirt_loss(images.bfloat16(), texts.bfloat16())
    assert loss.dtype == torch.float32
    in_fp32 = convirt_loss(images.bfloat16().float(), texts.bfloat16().float()).item()
    assert loss.item() == pytest.approx(in_fp32, rel=1e-6)
