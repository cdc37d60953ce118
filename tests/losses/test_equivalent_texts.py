"""Equivalent texts as shared positives: plain ConVIRT without duplicates, spread targets with them."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from usconvirt.losses.grouped_infonce import grouped_convirt_loss
from usconvirt.losses.infonce import convirt_loss, equivalent_negatives, equivalent_targets
from usconvirt.training.equivalent_texts import TextKeys, normalised, sentence_findings


def _embeddings(n: int = 6, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, d, generator=g, requires_grad=True)
    return images, torch.randn(n, d, generator=g, requires_grad=True)


def test_distinct_texts_give_plain_convirt_loss():
    images, texts = _embeddings()
    keys = torch.arange(6) * 7919
    assert torch.allclose(convirt_loss(images, texts, text_keys=keys), convirt_loss(images, texts))
    assert torch.allclose(grouped_convirt_loss(images, texts, 4, text_keys=keys),
                          grouped_convirt_loss(images, texts, 4))


def test_duplicates_spread_the_targets_and_change_the_loss():
    keys = torch.tensor([5, 5, 9, 5, 1, 9])
    targets = equivalent_targets(keys)
    assert torch.allclose(targets[0], torch.tensor([1 / 3, 1 / 3, 0, 1 / 3, 0, 0]))
    assert torch.allclose(targets[4], torch.tensor([0, 0, 0, 0, 1.0, 0]))
    assert torch.allclose(targets.sum(1), torch.ones(6))
    images, texts = _embeddings()
    multi = convirt_loss(images, texts, text_keys=keys)
    assert not torch.allclose(multi, convirt_loss(images, texts))
    multi.backward()
    assert torch.isfinite(images.grad).all() and torch.isfinite(texts.grad).all()
    assert images.grad.abs().sum() > 0


def test_grouped_loss_takes_the_keys_per_group():
    images, texts = _embeddings(n=7)
    keys = torch.tensor([1, 1, 2, 3, 4, 4, 4])  # groups of 3: [1 1 2] [3 4 4], the lone last pair left out
    loss = grouped_convirt_loss(images, texts, 3, text_keys=keys)
    by_hand = (convirt_loss(images[:3], texts[:3], text_keys=keys[:3])
               + convirt_loss(images[3:6], texts[3:6], text_keys=keys[3:6])) / 2
    assert float(loss) == pytest.approx(float(by_hand), rel=1e-5)


def test_equivalent_negatives_are_counted():
    equivalent, negatives = equivalent_negatives(torch.tensor([5, 5, 9, 5]))
    assert int(equivalent) == 6 and negatives == 12  # three texts alike: 3 x 2 ordered pairs
    equivalent, negatives = equivalent_negatives(torch.tensor([[1, 1], [2, 3]]))
    assert int(equivalent) == 2 and negatives == 4


def test_normalisation_and_findings_keys():
    assert normalised("Reins  NORMAUX, sans dilatation.") == normalised("reins normaux sans dilatation")
    assert normalised("Échogénicité normale") == "echogenicite normale"
    identical = TextKeys("identical")
    assert identical(["Rein droit normal."]) == identical(["rein droit  normal"])
    assert identical(["Rein droit normal."]) != identical(["Rein gauche normal."])
    sentences = pd.DataFrame({"text": ["Rein droit normal.", "Rein droit de taille normale, sans dilatation.",
                                       "Hydronéphrose droite."],
                              "organ": "kidney", "laterality": ["right", "right", "right"],
                              "abnormal": [False, False, True]})
    findings = TextKeys("findings", sentence_findings(sentences))
    assert findings(["Rein droit normal."]) == findings(["Rein droit de taille normale, sans dilatation."])
    assert findings(["Rein droit normal."]) != findings(["Hydronéphrose droite."])
    assert findings(["Une phrase inconnue."]) == findings(["une phrase, inconnue"])
    # a sentence whose status the sentence stage could not read (a missing nullable boolean)
    unread = sentences.astype({"abnormal": "boolean"})
    unread.loc[2, "abnormal"] = pd.NA
    keys = TextKeys("findings", sentence_findings(unread))
    unknown = keys(["Hydronéphrose droite."])
    assert unknown not in (keys(["Rein droit normal."]), findings(["Hydronéphrose droite."]))


def test_identical_embeddings_of_identical_texts_leave_the_soft_loss_unchanged():
    """What the soft-target form cannot do: two texts that embed identically score the same, so spreading
    the target over them equals ConVIRT's one-hot loss; it acts through texts equal only once normalised
    (or made different by dropout)."""
    images, texts = _embeddings()
    texts = texts.detach().clone()
    texts[3] = texts[0]
    keys = torch.tensor([0, 1, 2, 0, 4, 5])
    assert torch.allclose(convirt_loss(images, texts, text_keys=keys), convirt_loss(images, texts))
