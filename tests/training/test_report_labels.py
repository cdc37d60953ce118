"""Report labels on a tiny pair set: the control (ConVIRT's step budget, an encoder out) and the weak-label
term added to ConVIRT's loss."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from pretrain_fixtures import make_pair_set, tiny_config

from usconvirt.errors import InputError
from usconvirt.losses.gce import generalized_cross_entropy
from usconvirt.models.classifier import KidneyClassifier
from usconvirt.models.convirt import create_convirt, load_tokenizer
from usconvirt.models.image_encoder import image_encoder_from
from usconvirt.training.pretrain import ConVIRTModule, pretrain
from usconvirt.training.report_labels import convirt_steps, pretrain_report_labels


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_pair_set(tmp_path_factory.mktemp("pairs") / "dataset")


def exam_labels(n_exams: int, unknown: int) -> pd.DataFrame:
    """Exams e0.. alternately abnormal and normal, the first `unknown` of them unknown; sides unknown."""
    labels = ["unknown"] * unknown + [("abnormal", "normal")[j % 2] for j in range(unknown, n_exams)]
    return pd.DataFrame({"exam_id": [f"e{j}" for j in range(n_exams)], "label": labels, "sentence_ids": "",
                         "right": "unknown", "right_sentence_ids": "", "left": "unknown",
                         "left_sentence_ids": ""})


def test_report_labels_train_on_known_labels_with_convirts_budget(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    config = tiny_config(epochs=2, heldout_fraction=0.0)
    summary = pretrain_report_labels(dataset, pairs, exam_labels(16, unknown=4), tmp_path / "rl", config)
    convirt = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "convirt", config)
    # 8 of 32 frames unknown, left out; the step count is still ConVIRT's on all 32
    assert summary["steps"] == convirt["steps"] == convirt_steps(32, config) == 8
    frames = json.loads((tmp_path / "rl" / "frames.json").read_text())
    assert frames == {"normal": 12, "abnormal": 12, "unknown_left_out": 8} and summary["pairs"] == 24
    assert len(pd.read_csv(tmp_path / "rl" / "loss.csv")) == 8
    model = KidneyClassifier(image_encoder_from(str(tmp_path / "rl"), "tiny"))  # as fine-tuning loads it
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 2)


def test_one_class_of_weak_labels_is_refused(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, _ = pair_set
    labels = exam_labels(16, unknown=0).assign(label="normal")
    with pytest.raises(InputError, match="one class"):
        pretrain_report_labels(dataset, pairs, labels, tmp_path / "rl", tiny_config())


def test_weight_zero_is_convirts_loss_and_a_weight_adds_a_term(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    labels = exam_labels(16, unknown=4)
    plain = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "plain", tiny_config())
    zero = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "zero",
                    tiny_config(report_label_weight=0.0), weak_labels=labels)
    both = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "both",
                    tiny_config(report_label_weight=1.0), weak_labels=labels)
    curves = {name: pd.read_csv(tmp_path / name / "loss.csv")["loss"] for name in ("plain", "zero", "both")}
    assert curves["zero"].tolist() == curves["plain"].tolist()
    # the label head is drawn aside from the seeded stream: the first step is ConVIRT's, later ones move
    assert curves["both"].iloc[0] == pytest.approx(curves["plain"].iloc[0])
    assert curves["both"].iloc[1:].tolist() != curves["plain"].iloc[1:].tolist()
    assert both["steps"] == zero["steps"] == plain["steps"]
    with pytest.raises(InputError, match="weak labels"):
        pretrain(dataset, pairs, tokenizer_dir, tmp_path / "none", tiny_config(report_label_weight=1.0))


def test_the_label_term_averages_the_frames_whose_label_is_known(pair_set: tuple) -> None:
    config = tiny_config(report_label_weight=1.0)
    module = ConVIRTModule(create_convirt(config.model_config(), load_tokenizer(pair_set[2])), config)
    features, labels = torch.randn(3, module.report_head.in_features), torch.tensor([-1, 0, 1])
    expected = generalized_cross_entropy(module.report_head(features[1:]), labels[1:])
    assert module.report_label_loss(features, labels).item() == pytest.approx(expected.item())
    assert module.report_label_loss(features, torch.tensor([-1, -1, -1])).item() == 0.0
