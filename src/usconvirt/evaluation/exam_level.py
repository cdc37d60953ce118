"""Exam- and kidney-level decisions from frame scores: aggregation, operating point, bootstrap metrics.

The clinical question is per exam ("is one of this patient's kidneys abnormal?"), not per frame. An exam's
score aggregates the P(abnormal) of its kidney frames (max, mean or noisy-or), and the exam is called
abnormal at or above a threshold. The aggregation and the threshold are chosen on the validation exams
only, then applied unchanged to the test exams and to new exams (`usconvirt predict`). An exam is truly
abnormal when any of its kidney frames is labeled abnormal; a kidney (exam, side) when any frame of that
side is. Kidneys use the exam's rule, so a side's figure reads like the exam's. Intervals come from the
same patient bootstrap as the frame-level metrics (evaluation/metrics.py), patients drawn with their exams.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from usconvirt.errors import InputError
from usconvirt.evaluation.metrics import (
    bootstrap_metrics,
    confidence_interval,
    detection_metrics,
    per_class_report,
    roc_auc,
)
from usconvirt.run_layout import VAL_PREDICTIONS

AGGREGATIONS = ("max", "mean", "noisy_or")  # on a validation tie the earlier, simpler one is kept
CRITERIA = ("macro_f1", "youden", "sensitivity")
UNIT_METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "macro_f1", "roc_auc")


@dataclass(frozen=True)
class ExamRule:
    """How frame scores become an exam decision; chosen on validation exams by `choose_rule`."""

    aggregation: str = "max"
    threshold: float = 0.5
    criterion: str = "macro_f1"
    target_sensitivity: float | None = None
    val_exams: int = 0
    val_auc: dict[str, float | None] | None = None  # per aggregation: what the choice was made on

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def aggregate(probs: np.ndarray, how: str) -> float:
    """One exam (or kidney) score from its frames' P(abnormal)."""
    probs = np.asarray(probs, dtype=float)
    if how == "max":
        return float(probs.max())
    if how == "mean":
        return float(probs.mean())
    if how == "noisy_or":  # P(at least one frame shows the finding), frames taken as independent
        return float(1.0 - np.prod(1.0 - probs))
    raise InputError(f"unknown aggregation '{how}', expected one of {', '.join(AGGREGATIONS)}",
                     field="aggregation")


def unit_scores(frames: pd.DataFrame, aggregation: str, by: tuple[str, ...] = ("exam_id",)) -> pd.DataFrame:
    """One row per exam (or per `by` group, e.g. exam and side): frames, score, patient_id and label
    where the frames carry them (label 1 when any frame is abnormal)."""
    columns = [*by, "frames", "score"]
    extra = [c for c in ("patient_id", "label") if c in frames]
    if frames.empty:
        return pd.DataFrame(columns=columns + extra)
    grouped = frames.groupby(list(by), sort=True)
    table = grouped["prob_abnormal"].agg(lambda p: aggregate(p.to_numpy(), aggregation)).rename("score")
    table = pd.concat([grouped.size().rename("frames"), table], axis=1)
    if "patient_id" in frames:
        table["patient_id"] = grouped["patient_id"].first()
    if "label" in frames:
        table["label"] = grouped["label"].agg(lambda y: int(np.asarray(y, dtype=int).max()))
    return table.reset_index()[columns + extra]


def sided(frames: pd.DataFrame) -> pd.DataFrame:
    """The frames whose side (left/right) is known: the kidney-level rows are built from these."""
    if "side" not in frames:
        return frames.iloc[:0]
    return frames[frames["side"].astype(str).isin(["left", "right"])]


def choose_threshold(labels: np.ndarray, scores: np.ndarray, criterion: str = "macro_f1",
                     target_sensitivity: float | None = None) -> float:
    """The validation operating point: best macro-F1, best Youden J, or the highest threshold that reaches
    `target_sensitivity`. It sits halfway between the chosen score and the next lower one, so that a new
    score falling between two validation scores is not decided by a tie."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion '{criterion}', expected one of {', '.join(CRITERIA)}",
                         field="criterion")
    if criterion == "sensitivity" and (target_sensitivity is None or not 0 < target_sensitivity <= 1):
        raise InputError(f"expected a target sensitivity in (0, 1], got {target_sensitivity!r}",
                         field="target_sensitivity")
    if len(np.unique(labels)) < 2:
        return 0.5  # one class only: no operating point can be learnt, keep the classifier's own
    candidates = np.unique(scores)[::-1]  # descending, so the first best is the highest threshold
    preds = scores[None, :] >= candidates[:, None]
    y = labels[None, :] == 1
    counts = np.stack([(~y & ~preds).sum(1), (~y & preds).sum(1), (y & ~preds).sum(1), (y & preds).sum(1)],
                      axis=1)
    report = per_class_report(counts)
    if criterion == "sensitivity":
        index = int(np.nonzero(report["recall_1"] >= target_sensitivity - 1e-12)[0][0])
    elif criterion == "youden":
        index = int(np.argmax(report["recall_1"] + report["recall_0"]))
    else:
        index = int(np.argmax(report["macro_f1"]))
    lower = candidates[index + 1] if index + 1 < len(candidates) else 0.0
    return float((candidates[index] + lower) / 2)


def choose_rule(val_frames: pd.DataFrame, criterion: str = "macro_f1",
                target_sensitivity: float | None = None) -> ExamRule:
    """Aggregation with the best validation exam AUC, then its threshold by `criterion`.

    `val_frames` holds the validation kidney frames: exam_id, label (0/1), prob_abnormal.
    """
    tables = {how: unit_scores(val_frames, how) for how in AGGREGATIONS}
    aucs = {how: _auc(t) for how, t in tables.items()}
    best = max(AGGREGATIONS, key=lambda how: (-1.0 if aucs[how] is None else aucs[how],
                                              -AGGREGATIONS.index(how)))
    table = tables[best]
    threshold = (choose_threshold(table["label"], table["score"], criterion, target_sensitivity)
                 if len(table) else 0.5)
    return ExamRule(aggregation=best, threshold=threshold, criterion=criterion,
                    target_sensitivity=target_sensitivity, val_exams=len(table), val_auc=aucs)


def _auc(table: pd.DataFrame) -> float | None:
    if table.empty:
        return None
    value = float(roc_auc(table["label"].to_numpy(), table["score"].to_numpy())[0])
    return None if np.isnan(value) else value


def decide(scores: np.ndarray, rule: ExamRule) -> np.ndarray:
    """1 (abnormal) where the aggregated score reaches the rule's threshold."""
    return (np.asarray(scores, dtype=float) >= rule.threshold).astype(int)


def unit_metrics(table: pd.DataFrame, rule: ExamRule, *, n_bootstrap: int = 1000,
                 seed: int = 0) -> dict[str, Any]:
    """UNIT_METRICS with patient-bootstrap 95% intervals for scored units (exams or kidneys)."""
    labels, scores = table["label"].to_numpy(dtype=int), table["score"].to_numpy(dtype=float)
    preds = decide(scores, rule)
    point = detection_metrics(labels, preds, scores)
    samples = bootstrap_metrics(labels, preds, scores, table["patient_id"].to_numpy(),
                                n_bootstrap=n_bootstrap, seed=seed)
    out: dict[str, Any] = {"units": len(table), "patients": int(table["patient_id"].nunique()),
                           "abnormal": int(labels.sum())}
    for name in UNIT_METRICS:
        low, high = confidence_interval(samples[name])
        out[name] = {"value": _finite(point[name][0] if np.ndim(point[name]) else point[name]),
                     "ci_low": _finite(low), "ci_high": _finite(high)}
    return out


def exam_level_report(test_frames: pd.DataFrame, val_frames: pd.DataFrame, *, criterion: str = "macro_f1",
                      target_sensitivity: float | None = None, n_bootstrap: int = 1000,
                      seed: int = 0) -> dict[str, Any]:
    """The rule chosen on validation, and exam-level (and kidney-level, where sides are known) test metrics.

    Both frame tables hold exam_id, patient_id, label, prob_abnormal and optionally side.
    """
    rule = choose_rule(val_frames, criterion, target_sensitivity)
    report: dict[str, Any] = {"rule": rule.to_dict(),
                              "exam": unit_metrics(unit_scores(test_frames, rule.aggregation), rule,
                                                   n_bootstrap=n_bootstrap, seed=seed)}
    kidneys = sided(test_frames)
    if not kidneys.empty:
        report["kidney"] = unit_metrics(unit_scores(kidneys, rule.aggregation, ("exam_id", "side")), rule,
                                        n_bootstrap=n_bootstrap, seed=seed)
    return report


def _finite(x: float | None) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def val_predictions_path(run: str | Path) -> Path:
    """The validation predictions beside a run's test predictions (fine-tuning writes both)."""
    run = Path(run)
    return (run if run.is_dir() else run.parent) / VAL_PREDICTIONS


def with_sides(predictions: pd.DataFrame, sides: dict[str, str] | None) -> pd.DataFrame:
    """Predictions with a side column: their own, else looked up by image_id in `sides`."""
    if "side" in predictions or not sides:
        return predictions
    return predictions.assign(side=predictions["image_id"].map(sides).fillna(""))


def run_exam_level(test: pd.DataFrame, val: pd.DataFrame, *, sides: dict[str, str] | None = None,
                   n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """`exam_level_report` for one run's test and validation predictions, sides looked up if needed."""
    return exam_level_report(with_sides(test, sides), with_sides(val, sides), n_bootstrap=n_bootstrap,
                             seed=seed)


def dataset_sides(dataset_dir: str | Path) -> dict[str, str]:
    """image_id -> side (left/right or empty) from a dataset's images table, for kidney-level rows."""
    from usconvirt.io import find_table, read_table

    images = read_table(find_table(Path(dataset_dir), "images"))
    if "side" not in images:
        return {}
    return dict(zip(images["image_id"].astype(str), images["side"].fillna("").astype(str), strict=True))
