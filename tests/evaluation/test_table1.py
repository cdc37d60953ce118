"""Table 1 equals scikit-learn's classification_report, in the paper's layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import classification_report

from usconvirt.evaluation.table1 import ROWS, table1, to_flat_frame, to_json_dict, to_markdown

SKLEARN_ROWS = {"Normal Kidneys": "0", "Abnormal Kidneys": "1", "macro-average": "macro avg",
                "weighted average": "weighted avg"}


def _predictions(seed: int, n: int = 200, accuracy: float = 0.75) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.3).astype(int)
    pred = np.where(rng.random(n) < accuracy, label, 1 - label)
    return pd.DataFrame({"label": label, "pred": pred})


def _assert_matches_sklearn(table: pd.DataFrame, run: str, df: pd.DataFrame) -> None:
    ref = classification_report(df["label"], df["pred"], labels=[0, 1], output_dict=True, zero_division=0)
    support = ("support", "") if ("support", "") in table.columns else ("support", run)
    for row, key in SKLEARN_ROWS.items():
        for metric in ("precision", "recall", "f1-score"):
            assert table.at[row, (metric, run)] == pytest.approx(ref[key][metric], abs=1e-12)
        assert table.at[row, support] == ref[key]["support"]
    assert table.at["accuracy", ("f1-score", run)] == pytest.approx(ref["accuracy"], abs=1e-12)
    assert np.isnan(table.at["accuracy", ("precision", run)])


@pytest.mark.parametrize("seed", range(5))
def test_one_run_equals_classification_report(seed):
    df = _predictions(seed)
    table = table1({"ConVIRT": df})
    assert list(table.index) == list(ROWS)
    _assert_matches_sklearn(table, "ConVIRT", df)


def test_two_runs_side_by_side_in_paper_layout():
    base, convirt = _predictions(1, accuracy=0.6), _predictions(1, accuracy=0.9)
    table = table1({"Baseline": base, "ConVIRT": convirt})
    runs = ("Baseline", "ConVIRT")
    expected = [(m, r) for m in ("precision", "recall", "f1-score") for r in runs] + [("support", "")]
    assert list(table.columns) == expected
    _assert_matches_sklearn(table, "Baseline", base)
    _assert_matches_sklearn(table, "ConVIRT", convirt)
    md = to_markdown(table)
    assert md.splitlines()[0].startswith("| | Precision (Baseline) | Precision (ConVIRT)")
    accuracy_line = next(line for line in md.splitlines() if line.startswith("| accuracy"))
    assert f"**{table.at['accuracy', ('f1-score', 'ConVIRT')]:.2f}**" in accuracy_line


def test_degenerate_predictions_follow_zero_division_zero():
    df = pd.DataFrame({"label": [0, 0, 1, 1, 0], "pred": [0, 0, 0, 0, 0]})
    _assert_matches_sklearn(table1({"run": df}), "run", df)


def test_different_test_sets_get_one_support_column_each():
    table = table1({"a": _predictions(1, n=50), "b": _predictions(2, n=60)})
    assert ("support", "a") in table.columns and ("support", "b") in table.columns
    assert table.at["accuracy", ("support", "b")] == 60


def test_flat_and_json_forms_keep_the_numbers():
    df = _predictions(3)
    table = table1({"ConVIRT": df})
    flat = to_flat_frame(table)
    assert list(flat.columns) == ["row", "precision/ConVIRT", "recall/ConVIRT", "f1-score/ConVIRT", "support"]
    as_json = to_json_dict(table)["ConVIRT"]
    ref = classification_report(df["label"], df["pred"], output_dict=True)
    assert as_json["macro-average"]["f1-score"] == pytest.approx(ref["macro avg"]["f1-score"])
    assert as_json["accuracy"]["precision"] is None and as_json["accuracy"]["support"] == len(df)
