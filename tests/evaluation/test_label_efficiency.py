"""Label efficiency: one fine-tuning per (init, fraction), macro-F1 from predictions.csv, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import f1_score

from usconvirt.errors import InputError
from usconvirt.evaluation import label_efficiency as le
from usconvirt.training.finetune import FinetuneConfig


class FakeFinetune:
    """Writes predictions that get better with more labels and with the 'good' initialisation."""

    def __init__(self, die_at: int | None = None) -> None:
        self.calls: list[tuple[str, float]] = []
        self.die_at = die_at

    def __call__(self, dataset, split, out_dir: Path, config: FinetuneConfig, **options) -> dict:
        if self.die_at is not None and len(self.calls) == self.die_at:
            raise KeyboardInterrupt  # the stage killed mid-way
        self.calls.append((config.init, config.train_fraction))
        labels = [0] * 6 + [1] * 4
        right = round(len(labels) * (0.5 + 0.4 * config.train_fraction + 0.1 * (config.init == "good")))
        preds = [y if i < right else 1 - y for i, y in enumerate(labels)]
        out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"image_id": [f"i{i}" for i in range(10)], "exam_id": "e",
                      "patient_id": [f"p{i % 5}" for i in range(10)],
                      "label": labels, "prob_abnormal": preds, "pred": preds}).to_csv(
            out_dir / "predictions.csv", index=False)
        n_train = max(2, round(100 * config.train_fraction))
        (out_dir / "metrics.json").write_text(json.dumps({"frames": {"train": n_train}}))
        return {}


def test_label_efficiency_runs_every_fraction_and_recomputes_macro_f1(tmp_path, monkeypatch):
    fake = FakeFinetune()
    monkeypatch.setattr(le, "finetune", fake)
    config = le.LabelEfficiencyConfig(fractions=(0.01, 0.1, 1.0), finetune=FinetuneConfig(epochs=1))
    table = le.label_efficiency(None, None, {"random": "random", "ConVIRT": "good"}, tmp_path, config)

    assert fake.calls == [("random", 0.01), ("random", 0.1), ("random", 1.0),
                          ("good", 0.01), ("good", 0.1), ("good", 1.0)]
    assert table["n_train"].tolist() == [2, 10, 100, 2, 10, 100]
    predictions = pd.read_csv(le.run_dir(tmp_path, "ConVIRT", 0.1) / "predictions.csv")
    expected = f1_score(predictions["label"], predictions["pred"], average="macro")
    assert table.loc[(table["init"] == "ConVIRT") & (table["fraction"] == 0.1), "macro_f1"].item() == \
        pytest.approx(expected)
    assert pd.read_csv(tmp_path / "label_efficiency.csv").shape == (6, 12)
    with Image.open(tmp_path / "label_efficiency.png") as png:
        assert png.width > 300


def test_label_efficiency_gives_paired_intervals_of_the_gain_over_random(tmp_path, monkeypatch):
    monkeypatch.setattr(le, "finetune", FakeFinetune())
    config = le.LabelEfficiencyConfig(fractions=(0.1, 1.0), n_bootstrap=200)
    table = le.label_efficiency(None, None, {"random": "random", "ConVIRT": "good"}, tmp_path, config)

    rows = table.set_index(["init", "fraction"])
    good, base = rows.loc[("ConVIRT", 0.1)], rows.loc[("random", 0.1)]
    assert good["vs"] == "random" and good["gain"] == pytest.approx(good["macro_f1"] - base["macro_f1"])
    assert good["gain"] > 0 and good["gain_ci_low"] <= good["gain"] <= good["gain_ci_high"]
    assert good["macro_f1_ci_low"] <= good["macro_f1"] <= good["macro_f1_ci_high"]
    assert base["vs"] == "" or pd.isna(base["vs"])
    assert pd.isna(base["gain"]) and pd.isna(base["gain_ci_low"])
    assert good["macro_f1_ci_high"] > good["macro_f1_ci_low"]


def test_the_gain_interval_is_paired_two_identical_runs_differ_by_exactly_zero(tmp_path, monkeypatch):
    monkeypatch.setattr(le, "finetune", FakeFinetune())
    config = le.LabelEfficiencyConfig(fractions=(0.1,), n_bootstrap=200)
    table = le.label_efficiency(None, None, {"random": "random", "again": "random"}, tmp_path, config)
    again = table.set_index("init").loc["again"]
    assert again["macro_f1_ci_high"] > again["macro_f1_ci_low"]  # each score varies over the resamples,
    assert (again["gain"], again["gain_ci_low"], again["gain_ci_high"]) == (0.0, 0.0, 0.0)  # the gain not


def test_label_efficiency_resumes_without_refitting_finished_runs(tmp_path, monkeypatch):
    fake = FakeFinetune()
    monkeypatch.setattr(le, "finetune", fake)
    config = le.LabelEfficiencyConfig(fractions=(0.1, 1.0))
    le.label_efficiency(None, None, {"random": "random"}, tmp_path, config)
    (le.run_dir(tmp_path, "random", 1.0) / "metrics.json").unlink()  # as if killed before the end
    le.label_efficiency(None, None, {"random": "random"}, tmp_path, config)
    assert fake.calls == [("random", 0.1), ("random", 1.0), ("random", 1.0)]


@pytest.mark.parametrize("fractions", [(0.0, 1.0), (1.5,)])
def test_label_efficiency_rejects_fractions_outside_zero_one(tmp_path, fractions):
    with pytest.raises(InputError, match="fractions"):
        le.label_efficiency(None, None, {"random": "random"}, tmp_path, le.LabelEfficiencyConfig(fractions))


def test_a_killed_study_redoes_only_unfinished_runs_and_runs_whose_inputs_changed(tmp_path, monkeypatch):
    inits = {"random": "random", "convirt": "convirt:RUN/pretrain"}
    made_from = {"random": {"encoder": None}, "convirt": {"encoder": "aaaa"}}
    config = le.LabelEfficiencyConfig(fractions=(0.1, 1.0))
    killed = FakeFinetune(die_at=3)
    monkeypatch.setattr(le, "finetune", killed)
    with pytest.raises(KeyboardInterrupt):
        le.label_efficiency(None, None, inits, tmp_path, config, made_from=made_from)
    assert killed.calls == [("random", 0.1), ("random", 1.0), ("convirt:RUN/pretrain", 0.1)]

    rerun = FakeFinetune()
    monkeypatch.setattr(le, "finetune", rerun)
    le.label_efficiency(None, None, inits, tmp_path, config, made_from=made_from)
    assert rerun.calls == [("convirt:RUN/pretrain", 1.0)]  # the three finished runs are kept

    retrained = FakeFinetune()  # a new pre-training: only ConVIRT's runs are stale
    monkeypatch.setattr(le, "finetune", retrained)
    changed = {**made_from, "convirt": {"encoder": "b"}}
    le.label_efficiency(None, None, inits, tmp_path, config, made_from=changed)
    assert retrained.calls == [("convirt:RUN/pretrain", 0.1), ("convirt:RUN/pretrain", 1.0)]
