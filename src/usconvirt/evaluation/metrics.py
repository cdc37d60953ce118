"""Binary detection metrics from confusion counts, and their bootstrap confidence intervals by patient.

Everything is computed from weighted confusion counts so that one matrix product scores a thousand
bootstrap resamples at once: a resample is a vector of patient multiplicities, and a frame's weight is
its patient's multiplicity. Resampling patients rather than frames keeps a patient's correlated frames
together, so the intervals are not too narrow. Class 1 (abnormal) is the positive class.
"""

from __future__ import annotations

import numpy as np

METRICS = ("sensitivity", "specificity", "ppv", "npv", "accuracy", "macro_f1", "weighted_f1", "roc_auc")


def binary_macro_f1(labels, preds) -> float:
    """Macro-F1 over normal (0) and abnormal (1), 0 for a class never predicted nor present (sklearn's)."""
    return float(per_class_report(confusion_counts(labels, preds))["macro_f1"])


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def confusion_counts(labels: np.ndarray, preds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(..., 4) counts tn, fp, fn, tp; `weights` (B, N) gives one row of counts per resample."""
    labels, preds = np.asarray(labels, dtype=int), np.asarray(preds, dtype=int)
    cells = np.stack([(labels == 0) & (preds == 0), (labels == 0) & (preds == 1),
                      (labels == 1) & (preds == 0), (labels == 1) & (preds == 1)], axis=1).astype(float)
    return cells.sum(0) if weights is None else weights @ cells


def per_class_report(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class precision/recall/F1/support (suffix _0 normal, _1 abnormal), accuracy, macro and weighted."""
    tn, fp, fn, tp = np.moveaxis(np.asarray(counts, dtype=float), -1, 0)
    out = {"precision_0": _ratio(tn, tn + fn), "recall_0": _ratio(tn, tn + fp), "support_0": tn + fp,
           "precision_1": _ratio(tp, tp + fp), "recall_1": _ratio(tp, tp + fn), "support_1": tp + fn}
    for c in "01":
        p, r = out[f"precision_{c}"], out[f"recall_{c}"]
        out[f"f1_{c}"] = _ratio(2 * p * r, p + r)
    total = tn + fp + fn + tp
    out["support"] = total
    out["accuracy"] = _ratio(tn + tp, total)
    for name in ("precision", "recall", "f1"):
        a, b = out[f"{name}_0"], out[f"{name}_1"]
        out[f"macro_{name}"] = (a + b) / 2
        out[f"weighted_{name}"] = _ratio(a * out["support_0"] + b * out["support_1"], total)
    return out


def roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """ROC-AUC (ties count one half), one value per row of `weights` (B, N); NaN without both classes."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    w = np.ones((1, len(labels))) if weights is None else np.atleast_2d(weights)
    if len(labels) == 0:
        return np.full(len(w), np.nan)
    order = np.argsort(scores, kind="mergesort")
    y, w = labels[order], w[:, order]
    _, starts = np.unique(scores[order], return_index=True)
    neg = np.add.reduceat(w * (y == 0), starts, axis=1)  # (B, tie groups), ascending score
    pos = np.add.reduceat(w * (y == 1), starts, axis=1)
    credit = np.cumsum(neg, axis=1) - neg / 2  # negatives strictly below, plus half the ties
    den = pos.sum(1) * neg.sum(1)
    auc = np.divide((pos * credit).sum(1), den, out=np.full(len(w), np.nan), where=den > 0)
    return auc if weights is not None else auc[:1]


def detection_metrics(labels: np.ndarray, preds: np.ndarray, scores: np.ndarray,
                      weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The METRICS, each an array with one value per row of `weights` (one value without weights)."""
    report = per_class_report(confusion_counts(labels, preds, weights))
    return {
        "sensitivity": report["recall_1"], "specificity": report["recall_0"],
        "ppv": report["precision_1"], "npv": report["precision_0"],
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "weighted_f1": report["weighted_f1"],
        "roc_auc": roc_auc(labels, scores, weights),
    }


def patient_resamples(patients: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """(n_bootstrap, N) frame weights: how often each frame's patient was drawn (with replacement)."""
    ids, index = np.unique(np.asarray(patients, dtype=str), return_inverse=True)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ids), size=(n_bootstrap, len(ids)))
    multiplicity = np.zeros((n_bootstrap, len(ids)))
    np.add.at(multiplicity, (np.arange(n_bootstrap)[:, None], draws), 1.0)
    return multiplicity[:, index]


def bootstrap_metrics(labels: np.ndarray, preds: np.ndarray, scores: np.ndarray, patients: np.ndarray,
                      *, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Each metric over `n_bootstrap` patient resamples; the same seed and patients give paired resamples."""
    weights = patient_resamples(patients, n_bootstrap, seed)
    return detection_metrics(labels, preds, scores, weights)


def confidence_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval, ignoring resamples where the metric is undefined (NaN)."""
    samples = np.asarray(samples, dtype=float)
    if np.isnan(samples).all():
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return float(low), float(high)
