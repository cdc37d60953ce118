"""`usconvirt evaluate`: Table 1 and detection metrics with patient-bootstrap CIs for one or more runs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from usconvirt.config import check_fields
from usconvirt.errors import InputError
from usconvirt.evaluation.config import EvaluationConfig
from usconvirt.evaluation.exam_level import run_exam_level, val_predictions_path
from usconvirt.evaluation.metrics import METRICS, bootstrap_metrics, confidence_interval, detection_metrics
from usconvirt.evaluation.table1 import table1, to_flat_frame, to_json_dict, to_markdown
from usconvirt.io import atomic_path, read_table, require_columns, write_json, write_table
from usconvirt.run_layout import METRICS_JSON, METRICS_TABLE, PREDICTIONS, TABLE1_CSV, TABLE1_MD

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("image_id", "patient_id", "label", "prob_abnormal", "pred")


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A run's test predictions (a predictions.csv, or a fine-tuning directory holding one), checked."""
    path = Path(path)
    if path.is_dir():
        path = path / PREDICTIONS
    df = read_table(path)
    require_columns(df, PREDICTION_COLUMNS, path)
    if df.empty:
        raise InputError("no predictions", file=path)
    for column in ("label", "pred"):
        bad = ~df[column].astype(str).isin(["0", "1"])
        if bad.any():
            raise InputError(f"expected 0 (normal) or 1 (abnormal), got '{df[column][bad].iloc[0]}'",
                             file=path, row=int(bad.to_numpy().argmax()) + 1, field=column)
    prob = pd.to_numeric(df["prob_abnormal"], errors="coerce")
    bad = prob.isna() | (prob < 0) | (prob > 1)
    if bad.any():
        raise InputError(f"expected a probability in [0, 1], got '{df['prob_abnormal'][bad].iloc[0]}'",
                         file=path, row=int(bad.to_numpy().argmax()) + 1, field="prob_abnormal")
    return df.assign(label=df["label"].astype(int), pred=df["pred"].astype(int), prob_abnormal=prob)


def run_metrics(predictions: pd.DataFrame, *, n_bootstrap: int = 1000, seed: int = 0,
                ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Point estimates of the METRICS and their bootstrap samples (patients resampled)."""
    args = (predictions["label"].to_numpy(), predictions["pred"].to_numpy(),
            predictions["prob_abnormal"].to_numpy())
    point = {k: float(v[0]) if np.ndim(v) else float(v) for k, v in detection_metrics(*args).items()}
    patients = predictions["patient_id"].to_numpy()
    samples = bootstrap_metrics(*args, patients, n_bootstrap=n_bootstrap, seed=seed)
    return point, samples


def evaluate_runs(runs: dict[str, str | Path], out_dir: str | Path, *, n_bootstrap: int = 1000,
                  seed: int = 0, sides: dict[str, str] | None = None) -> dict[str, Any]:
    """Write out_dir/table1.{md,csv,json} and out_dir/metrics.{json,csv}; return the metrics dict.

    Resamples depend only on the seed and the set of patients, so runs scored on the same test frames
    share them, and the difference of each metric to the first run gets a paired confidence interval.
    """
    if not runs:
        raise InputError("give at least one run (NAME=PATH)")
    check_fields(EvaluationConfig(n_bootstrap=n_bootstrap, seed=seed), source="evaluation")
    predictions = {name: read_predictions(path) for name, path in runs.items()}
    out_dir = Path(out_dir)

    table = table1(predictions)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / TABLE1_MD) as tmp:
        tmp.write_text(to_markdown(table), encoding="utf-8")
    write_table(to_flat_frame(table), out_dir / TABLE1_CSV)
    write_json(to_json_dict(table), out_dir / "table1.json")

    names = list(predictions)
    reference = names[0]
    paired = all(_same_frames(predictions[n], predictions[reference]) for n in names)
    results: dict[str, Any] = {"n_bootstrap": n_bootstrap, "seed": seed, "resampled_by": "patient",
                               "paired": paired, "runs": {}, "differences": {}}
    samples_by_run = {}
    for name in names:
        df = predictions[name]
        point, samples = run_metrics(df, n_bootstrap=n_bootstrap, seed=seed)
        samples_by_run[name] = samples
        results["runs"][name] = {m: _estimate(point[m], samples[m]) for m in METRICS}
        results["runs"][name]["frames"] = len(df)
        results["runs"][name]["patients"] = int(df["patient_id"].nunique())
        val_path = val_predictions_path(runs[name])
        if val_path.exists():  # the exam rule is chosen on the run's validation predictions
            results["runs"][name]["exam_level"] = run_exam_level(
                df, read_predictions(val_path), sides=sides, n_bootstrap=n_bootstrap, seed=seed)
    if paired:
        for name in names[1:]:
            results["differences"][f"{name} - {reference}"] = {
                m: _estimate(results["runs"][name][m]["value"] - results["runs"][reference][m]["value"],
                             samples_by_run[name][m] - samples_by_run[reference][m]) for m in METRICS}
    write_json(results, out_dir / METRICS_JSON)
    write_table(_metrics_frame(results), out_dir / METRICS_TABLE)
    log.info("evaluated %d run(s) into %s", len(names), out_dir)
    return {"table1": to_json_dict(table), **results}


def _same_frames(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return sorted(a["image_id"]) == sorted(b["image_id"])


def _estimate(value: float, samples: np.ndarray) -> dict[str, float | None]:
    low, high = confidence_interval(samples)
    return {"value": _finite(value), "ci_low": _finite(low), "ci_high": _finite(high)}


def _finite(x: float) -> float | None:
    return None if x is None or np.isnan(x) else float(x)


def _metrics_frame(results: dict[str, Any]) -> pd.DataFrame:
    """Long table: run (or 'A - B' difference), metric, value, ci_low, ci_high."""
    rows = [{"run": run, "metric": m, **est}
            for group in ("runs", "differences") for run, metrics in results[group].items()
            for m, est in metrics.items() if m in METRICS]
    return pd.DataFrame(rows, columns=["run", "metric", "value", "ci_low", "ci_high"])

