"""Retrieval Recall@k, zero-shot scoring, and the whole measure through a saved ConVIRT model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from tiny_kidneys import PARTS, SENTENCES, SIZE, kidney_pairs, make_dataset, save_tiny_convirt

from usconvirt.evaluation.retrieval import (
    ABNORMAL_PROMPTS,
    NORMAL_PROMPTS,
    RetrievalConfig,
    heldout_pairs,
    recall_at_k,
    retrieval_and_zero_shot,
    retrieval_recalls,
    zero_shot_metrics,
    zero_shot_probabilities,
)


def test_recall_at_k_ranks_each_query_by_similarity():
    similarity = np.array([[0.9, 0.5, 0.1],   # relevant ranked 1st
                           [0.9, 0.5, 0.1],   # relevant ranked 2nd
                           [0.9, 0.5, 0.1]])  # relevant ranked 3rd
    relevant = np.eye(3, dtype=bool)
    assert recall_at_k(similarity, relevant, ks=(1, 2, 3)) == pytest.approx(
        {"R@1": 1 / 3, "R@2": 2 / 3, "R@3": 1.0})


def test_recall_at_k_counts_any_relevant_candidate_and_misses_without_one():
    similarity = np.array([[0.1, 0.8, 0.9], [0.3, 0.2, 0.1]])
    relevant = np.array([[True, True, False], [False, False, False]])
    assert recall_at_k(similarity, relevant, ks=(1, 2)) == {"R@1": 0.0, "R@2": 0.5}


def test_retrieval_recalls_merges_identical_descriptions():
    image_emb = np.eye(3)[[0, 0, 1]]  # two images described by text "a", one by text "b"
    text_emb = np.eye(3)[[0, 1]]
    result = retrieval_recalls(image_emb, ["a", "a", "b"], text_emb, ["a", "b"], ks=(1,))
    assert result["image_to_text"] == {"R@1": 1.0}
    assert result["text_to_image"] == {"R@1": 1.0}
    assert (result["n_images"], result["n_texts"]) == (3, 2)


def test_zero_shot_probabilities_follow_the_nearest_class_prompt():
    normal, abnormal = np.array([[1.0, 0.0], [0.8, 0.6]]), np.array([[0.0, 1.0]])
    images = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    prob = zero_shot_probabilities(images, normal, abnormal, temperature=0.1)
    centre = np.array([0.9, 0.3]) / np.linalg.norm([0.9, 0.3])
    expected_logits = np.stack([images @ centre, images[:, 1]], axis=1) / 0.1
    np.testing.assert_allclose(prob, torch.softmax(torch.tensor(expected_logits), 1)[:, 1].numpy(), rtol=1e-6)
    assert prob[0] < 0.5 < prob[1]
    metrics = zero_shot_metrics(np.array([0, 1, 1]), prob)
    assert metrics["roc_auc"] == 1.0 and metrics["n_images"] == 3


def test_heldout_pairs_take_the_parts_kidney_sentences_only(tmp_path):
    dataset, split = make_dataset(tmp_path / "data")
    sentences = pd.DataFrame({"exam_id": ["test0", "test0", "train0"], "organ": ["kidney", "liver", "kidney"],
                              "text": ["Reins normaux.", "Foie normal.", "Kyste rénal."]})
    pairs = heldout_pairs(dataset, sentences, split, part="test")
    assert set(pairs["image_id"]) == {"test0-normal", "test0-abnormal"}
    assert all(texts == ["Reins normaux."] for texts in pairs["texts"])


class CystDetector:
    """A stand-in ConVIRT: images embed by centre darkness, texts by whether they describe disease."""

    image_size = SIZE
    abnormal_words = ("kyste", "dilatation des cavités pyélocalicielles", "lithiase", "atrophique", "masse")

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        centre = images[:, 0, SIZE // 3: 2 * SIZE // 3, SIZE // 3: 2 * SIZE // 3].mean((1, 2))
        return F.normalize(torch.stack([centre, 0.5 - centre], 1), dim=-1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        sick = torch.tensor([float(any(w in t.lower() and not t.lower().startswith(("absence", "pas"))
                                       for w in self.abnormal_words)) for t in texts])
        return F.normalize(torch.stack([1 - sick, sick], 1) + 1e-3, dim=-1)


def test_retrieval_and_zero_shot_with_a_stand_in_model(tmp_path, monkeypatch):
    dataset, split = make_dataset(tmp_path / "data")
    monkeypatch.setattr("usconvirt.models.convirt.load_convirt", lambda directory: CystDetector())
    test_ids = dataset.images.loc[dataset.images["exam_id"].str.startswith("test"), "image_id"].tolist()
    config = RetrievalConfig(cache_dir=str(tmp_path / "cache"))
    result = retrieval_and_zero_shot(dataset, kidney_pairs(dataset), tmp_path / "pretrain", test_ids,
                                     tmp_path / "evaluation", config)

    assert result["zero_shot"]["accuracy"] == 1.0 and result["zero_shot"]["n_images"] == 2 * PARTS["test"]
    assert result["retrieval"]["image_to_text"]["R@1"] == 1.0
    assert result["retrieval"]["n_texts"] == len(SENTENCES)  # identical descriptions merged
    saved = json.loads((tmp_path / "evaluation" / "retrieval.json").read_text(encoding="utf-8"))
    assert saved["prompts"] == {"normal": list(NORMAL_PROMPTS), "abnormal": list(ABNORMAL_PROMPTS)}


def test_retrieval_and_zero_shot_through_a_saved_convirt_model(tmp_path):
    dataset, split = make_dataset(tmp_path / "data")
    pairs = kidney_pairs(dataset)
    corpus = [" ".join(t) for t in SENTENCES.values()] + list(NORMAL_PROMPTS + ABNORMAL_PROMPTS)
    save_tiny_convirt(tmp_path / "pretrain", corpus)

    ids = dataset.images["image_id"].tolist()
    result = retrieval_and_zero_shot(dataset, pairs, tmp_path / "pretrain", ids, tmp_path / "evaluation",
                                     RetrievalConfig(ks=(1, 2), cache_dir=str(tmp_path / "cache")))
    recalls = result["retrieval"]["image_to_text"]
    assert recalls["R@1"] <= recalls["R@2"] == 1.0  # two candidates: the second cut-off always hits
    assert result["retrieval"]["n_images"] == len(ids)
    assert 0.0 <= result["zero_shot"]["roc_auc"] <= 1.0
