"""The ConVIRT loss against a direct float64 transcription of PAPER.md section 4.2."""

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


def test_without_shared_exams_groups_change_nothing() -> None:
    images, texts = torch.randn(6, 8), torch.randn(6, 8)
    plain = convirt_loss(images, texts).item()
    assert convirt_loss(images, texts, groups=torch.arange(6)) == pytest.approx(plain)


def test_same_exam_texts_count_as_positives_not_negatives() -> None:
    # rows 0 and 1 come from one exam and share its text: with groups, row 0 matching text 1 is no error
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    single = convirt_loss(images, texts)
    multi = convirt_loss(images, texts, groups=torch.tensor([0, 0, 1]))
    assert single > math.log(2) * 0.5  # half the mass of rows 0/1 sits on their "negative" twin
    assert multi < 1e-3


def test_loss_is_float32_under_bf16_autocast() -> None:
    images, texts = torch.randn(8, 16), torch.randn(8, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = convirt_loss(images.bfloat16(), texts.bfloat16())
    assert loss.dtype == torch.float32
    in_fp32 = convirt_loss(images.bfloat16().float(), texts.bfloat16().float()).item()
    assert loss.item() == pytest.approx(in_fp32, rel=1e-6)


def test_one_text_per_image_as_owners_is_the_plain_loss() -> None:
    images, texts = torch.randn(6, 8), torch.randn(6, 8)
    every = torch.ones(6, dtype=torch.bool)
    owned = convirt_loss(images, texts, text_owner=torch.arange(6), text_valid=every)
    assert owned == pytest.approx(convirt_loss(images, texts).item(), rel=1e-6)


def test_padding_texts_take_no_part() -> None:
    images, texts = torch.randn(4, 8), torch.randn(4, 8)
    padded = torch.stack([texts, torch.randn(4, 8) * 50.0], dim=1).flatten(0, 1)  # (image 0: text, pad), ...
    owner = torch.arange(4).repeat_interleave(2)
    valid = torch.tensor([True, False] * 4)
    got = convirt_loss(images, padded, text_owner=owner, text_valid=valid)
    assert got == pytest.approx(convirt_loss(images, texts).item(), rel=1e-6)


def test_an_image_may_match_any_of_its_sentences() -> None:
    # image 0's exam has two sentences; only the second describes it. MIL-NCE does not punish the first.
    images = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    texts = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    owner = torch.tensor([0, 0, 1, 1])
    mil = convirt_loss(images, texts, lam=1.0, text_owner=owner)
    first_only = convirt_loss(images, texts[[0, 2]], lam=1.0)  # image 0 forced onto its unrelated sentence
    assert mil < 0.1 < first_only


def test_text_valid_needs_owners() -> None:
    with pytest.raises(ValueError, match="text_owner"):
        convirt_loss(torch.randn(3, 4), torch.randn(3, 4), text_valid=torch.ones(3, dtype=torch.bool))
