"""Exam-level rule: aggregations, operating points, the validation choice, unit tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from usconvirt.evaluation.exam_level import aggregate, choose_rule, choose_threshold, unit_scores


def test_aggregations():
    p = np.array([0.1, 0.5])
    assert aggregate(p, "max") == 0.5
    assert aggregate(p, "mean") == pytest.approx(0.3)
    assert aggregate(p, "noisy_or") == pytest.approx(1 - 0.9 * 0.5)


def test_thresholds_by_criterion():
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])
    t = choose_threshold(labels, scores, "macro_f1")
    assert ((scores >= t) == [0, 0, 1, 1, 1, 1]).all() or ((scores >= t) == [0, 0, 0, 0, 1, 1]).all()
    t = choose_threshold(labels, scores, "sensitivity", target_sensitivity=1.0)
    assert t == pytest.approx((0.4 + 0.2) / 2)  # the highest threshold that still catches every abnormal
    t = choose_threshold(labels, scores, "youden")
    assert 0.2 < t <= 0.7


def test_rule_takes_the_aggregation_with_the_best_validation_auc():
    # Abnormal exams have one very abnormal frame among normal-looking ones: max separates them, mean not.
    rows = []
    for e in range(6):
        abnormal = e % 2
        probs = [0.3, 0.3, 0.95 if abnormal else 0.5] if abnormal else [0.45, 0.5, 0.55]
        rows += [{"exam_id": f"e{e}", "label": abnormal, "prob_abnormal": p} for p in probs]
    rule = choose_rule(pd.DataFrame(rows))
    assert rule.aggregation == "max" and rule.val_auc["max"] == 1.0 and rule.val_exams == 6
    table = unit_scores(pd.DataFrame(rows), "max")
    assert ((table["score"] >= rule.threshold) == (table["label"] == 1)).all()
