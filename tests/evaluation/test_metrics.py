"""Detection metrics against scikit-learn, and the patient bootstrap's resampling."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from usconvirt.errors import InputError
from usconvirt.evaluation.evaluate import evaluate_runs
from usconvirt.evaluation.metrics import (
    bootstrap_metrics,
    confidence_interval,
    detection_metrics,
    patient_resamples,
    roc_auc,
)


def _scored(seed: int, n: int = 300, signal: float = 1.5):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.35).astype(int)
    scores = 1 / (1 + np.exp(-(signal * (2 * labels - 1) + rng.normal(size=n))))
    scores = np.round(scores, 2)  # ties, which AUC must count one half
    patients = rng.integers(0, n // 3, size=n).astype(str)
    return labels, (scores >= 0.5).astype(int), scores, patients


@pytest.mark.parametrize("seed", range(3))
def test_point_metrics_equal_sklearn(seed):
    labels, preds, scores, _ = _scored(seed)
    m = {k: float(np.ravel(v)[0]) for k, v in detection_metrics(labels, preds, scores).items()}
    tn, fp, fn, tp = confusion_matrix(labels, preds).ravel()
    assert m["sensitivity"] == pytest.approx(tp / (tp + fn))
    assert m["specificity"] == pytest.approx(tn / (tn + fp))
    assert m["ppv"] == pytest.approx(tp / (tp + fp))
    assert m["npv"] == pytest.approx(tn / (tn + fn))
    assert m["macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert m["weighted_f1"] == pytest.approx(f1_score(labels, preds, average="weighted"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))


def test_weighted_auc_equals_auc_of_repeated_frames():
    labels, _, scores, _ = _scored(4, n=60)
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 4, size=(5, 60)).astype(float)
    got = roc_auc(labels, scores, weights)
    for w, value in zip(weights, got, strict=True):
        repeat = w.astype(int)
        assert value == pytest.approx(roc_auc_score(np.repeat(labels, repeat), np.repeat(scores, repeat)))


def test_resamples_draw_whole_patients():
    patients = np.array(["a", "a", "a", "b", "c", "c"])
    weights = patient_resamples(patients, 200, seed=3)
    assert weights.shape == (200, 6)
    assert np.all(weights[:, 0] == weights[:, 1]) and np.all(weights[:, 1] == weights[:, 2])
    assert np.all(weights[:, 4] == weights[:, 5])
    assert np.all(weights[:, [0, 3, 4]].sum(1) == 3)  # three patients drawn each time
    assert np.array_equal(weights, patient_resamples(patients, 200, seed=3))


def test_bootstrap_samples_match_metrics_of_materialised_resamples():
    labels, preds, scores, patients = _scored(5, n=90)
    samples = bootstrap_metrics(labels, preds, scores, patients, n_bootstrap=20, seed=7)
    weights = patient_resamples(patients, 20, seed=7)
    for b in (0, 13):
        idx = np.repeat(np.arange(90), weights[b].astype(int))
        assert samples["macro_f1"][b] == pytest.approx(f1_score(labels[idx], preds[idx], average="macro"))
        assert samples["roc_auc"][b] == pytest.approx(roc_auc_score(labels[idx], scores[idx]))


def test_interval_covers_estimate_and_narrows_with_more_patients():
    widths = []
    for n in (90, 900):
        labels, preds, scores, patients = _scored(6, n=n)
        point = float(detection_metrics(labels, preds, scores)["macro_f1"])
        low, high = confidence_interval(bootstrap_metrics(labels, preds, scores, patients,
                                                          n_bootstrap=500, seed=0)["macro_f1"])
        assert low <= point <= high
        widths.append(high - low)
    assert widths[1] < widths[0]


def _write_run(directory, labels, preds, scores, patients):
    directory.mkdir(parents=True)
    pd.DataFrame({"image_id": [f"i{i}" for i in range(len(labels))], "exam_id": patients,
                  "patient_id": patients, "label": labels, "prob_abnormal": scores, "pred": preds}
                 ).to_csv(directory / "predictions.csv", index=False)
    return directory


def test_evaluate_runs_writes_all_outputs_with_paired_differences(tmp_path):
    labels, preds, scores, patients = _scored(8)
    noisy = np.where(np.random.default_rng(1).random(len(labels)) < 0.3, 1 - preds, preds)
    runs = {"Baseline": _write_run(tmp_path / "base", labels, noisy, scores, patients),
            "ConVIRT": _write_run(tmp_path / "convirt", labels, preds, scores, patients)}
    result = evaluate_runs(runs, tmp_path / "evaluation", n_bootstrap=200, seed=0)
    out = tmp_path / "evaluation"
    for name in ("table1.md", "table1.csv", "table1.json", "metrics.json", "metrics.csv"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["paired"] is True
    conv = saved["runs"]["ConVIRT"]["macro_f1"]
    assert conv["value"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert conv["ci_low"] <= conv["value"] <= conv["ci_high"]
    delta = saved["differences"]["ConVIRT - Baseline"]["macro_f1"]
    assert delta["value"] > 0 and delta["ci_low"] > 0  # the paired interval sees the clear gain
    metrics_csv = pd.read_csv(out / "metrics.csv")
    assert set(metrics_csv["run"]) == {"Baseline", "ConVIRT", "ConVIRT - Baseline"}
    assert result["table1"]["ConVIRT"]["accuracy"]["support"] == len(labels)


def test_bad_predictions_name_file_row_and_field(tmp_path):
    labels, preds, scores, patients = _scored(9, n=12)
    run = _write_run(tmp_path / "run", labels, preds, scores, patients)
    df = pd.read_csv(run / "predictions.csv")
    df.loc[4, "pred"] = 2
    df.to_csv(run / "predictions.csv", index=False)
    with pytest.raises(InputError, match=r"row 5, field 'pred'"):
        evaluate_runs({"run": run}, tmp_path / "out")
    assert not (tmp_path / "out" / "table1.md").exists()


def test_cli_evaluate_writes_table_and_rejects_bad_run_argument(tmp_path):
    from typer.testing import CliRunner

    from usconvirt.cli import app

    labels, preds, scores, patients = _scored(10, n=40)
    run = _write_run(tmp_path / "run", labels, preds, scores, patients)
    runner = CliRunner()
    ok = runner.invoke(app, ["evaluate", "--run", f"ConVIRT={run}", "--out", str(tmp_path / "ev"),
                             "--bootstrap", "50"])
    assert ok.exit_code == 0, ok.output
    assert "| Normal Kidneys |" in ok.output and (tmp_path / "ev" / "metrics.csv").exists()
    bad = runner.invoke(app, ["evaluate", "--run", str(run), "--out", str(tmp_path / "ev2")])
    assert isinstance(bad.exception, InputError) and "NAME=PATH" in str(bad.exception)
