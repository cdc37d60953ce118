"""Label efficiency: fine-tune each initialisation on 1%, 10% and 100% of the labeled training set.

ConVIRT's own evaluation protocol; the curve shows how much annotation each initialisation saves.
Each run lives in OUT/runs/NAME/fraction_F/ and is skipped when its metrics.json exists and its
made_from.json matches what the run would be made from now (the init, the fine-tuning config, and
whatever the caller adds, such as the pre-trained encoder's fingerprint), so an interrupted study
resumes where it stopped and a study over changed inputs redoes only the runs they touch.

Every run's test macro-F1 gets a patient-bootstrap 95% interval, and its gain over the reference init
(random, where it runs) at the same fraction a paired one: the few-label end of the curve is where a
pre-training is meant to pay, and where a handful of test patients makes single numbers least reliable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from sklearn.metrics import accuracy_score

from usconvirt.config import config_hash
from usconvirt.data.dataset import Dataset
from usconvirt.errors import InputError
from usconvirt.evaluation.config import LabelEfficiencyConfig
from usconvirt.evaluation.evaluate import read_predictions, run_metrics
from usconvirt.evaluation.metrics import binary_macro_f1, confidence_interval
from usconvirt.evaluation.representation import save_figure
from usconvirt.io import write_json, write_table
from usconvirt.run_layout import LABEL_EFFICIENCY_PLOT, LABEL_EFFICIENCY_TABLE, METRICS_JSON, PREDICTIONS
from usconvirt.training.finetune import finetune

log = logging.getLogger(__name__)


MADE_FROM = "made_from.json"


def _finished(run: Path, key: dict) -> bool:
    """Fine-tuning writes metrics.json last; made_from.json after it says which inputs it came from."""
    if not (run / METRICS_JSON).exists() or not (run / MADE_FROM).exists():
        return False
    return json.loads((run / MADE_FROM).read_text()) == json.loads(json.dumps(key))


def run_dir(out_dir: Path, name: str, fraction: float) -> Path:
    return out_dir / "runs" / name / f"fraction_{fraction:g}"


def run_scores(predictions: pd.DataFrame) -> dict[str, float]:
    """Test macro-F1 and accuracy recomputed from a fine-tuning run's predictions (predictions.csv)."""
    y, pred = predictions["label"].astype(int), predictions["pred"].astype(int)
    return {"macro_f1": binary_macro_f1(y, pred),
            "accuracy": float(accuracy_score(y, pred)), "n_test": len(predictions)}


def label_efficiency(
    dataset: Dataset,
    split_df: pd.DataFrame,
    inits: dict[str, str],
    out_dir: str | Path,
    config: LabelEfficiencyConfig | None = None,
    *,
    made_from: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Fine-tune every (init, fraction); write label_efficiency.csv and .png; return the table.

    `made_from[name]` describes the inputs of init `name` beyond its config (e.g. an encoder fingerprint).
    """
    config = config or LabelEfficiencyConfig()
    if not inits:
        raise InputError("no initialisation to compare", field="inits")
    out_dir = Path(out_dir)
    rows, predictions = [], {}
    for name, init in inits.items():
        for fraction in config.fractions:
            run = run_dir(out_dir, name, fraction)
            run_config = dataclasses.replace(config.finetune, init=init, train_fraction=fraction)
            key = {"finetune": config_hash(run_config), **(made_from or {}).get(name, {})}
            if not _finished(run, key):
                log.info("label efficiency: %s on %g of the training set", name, fraction)
                shutil.rmtree(run, ignore_errors=True)
                finetune(dataset, split_df, run, run_config, resume=False)
                write_json(key, run / MADE_FROM)
            metrics = json.loads((run / METRICS_JSON).read_text())
            predictions[(name, fraction)] = read_predictions(run / PREDICTIONS)
            rows.append({"init": name, "fraction": fraction, "n_train": metrics["frames"]["train"],
                         **run_scores(predictions[(name, fraction)])})
    table = with_intervals(pd.DataFrame(rows), predictions, config.n_bootstrap, config.seed)
    write_table(table, out_dir / LABEL_EFFICIENCY_TABLE)
    plot_label_efficiency(table, out_dir / LABEL_EFFICIENCY_PLOT)
    return table


def with_intervals(table: pd.DataFrame, predictions: dict[tuple[str, float], pd.DataFrame],
                   n_bootstrap: int, seed: int) -> pd.DataFrame:
    """Add macro_f1_ci_low/high and, against the reference init at the same fraction (`random` if it
    ran, else the first init; named in `vs`), `gain` with gain_ci_low/high. `predictions` holds each
    (init, fraction) run's test predictions. Patients are resampled, the same resamples for every run
    scored on the same test frames, so the gain's interval is paired."""
    reference = "random" if "random" in set(table["init"]) else str(table["init"].iloc[0])
    samples = {key: run_metrics(frame, n_bootstrap=n_bootstrap, seed=seed)[1]["macro_f1"]
               for key, frame in predictions.items()}
    frames = {key: sorted(frame["image_id"]) for key, frame in predictions.items()}
    points = {(row["init"], row["fraction"]): row["macro_f1"] for row in table.to_dict("records")}
    nan = float("nan")
    rows = []
    for row in table.to_dict("records"):
        key, base = (row["init"], row["fraction"]), (reference, row["fraction"])
        low, high = confidence_interval(samples[key])
        extra = {"macro_f1_ci_low": low, "macro_f1_ci_high": high, "vs": "", "gain": nan,
                 "gain_ci_low": nan, "gain_ci_high": nan}
        if key != base and base in samples and frames[base] == frames[key]:
            gain_low, gain_high = confidence_interval(samples[key] - samples[base])
            extra.update(vs=reference, gain=points[key] - points[base], gain_ci_low=gain_low,
                         gain_ci_high=gain_high)
        rows.append({**row, **extra})
    return pd.DataFrame(rows)


def plot_label_efficiency(table: pd.DataFrame, path: str | Path) -> Path:
    """Test macro-F1 against the fraction of labeled training frames (log axis), one line per init."""
    fig = Figure(figsize=(5.5, 4.0))
    ax = fig.subplots()
    for name, runs in table.groupby("init", sort=False):
        runs = runs.sort_values("fraction")
        ax.plot(runs["fraction"], runs["macro_f1"], marker="o", label=str(name))
    fractions = sorted(table["fraction"].unique())
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(fractions))
    ax.xaxis.set_minor_locator(NullLocator())
    n_train = table.groupby("fraction")["n_train"].max() if "n_train" in table else {}
    ax.set_xticklabels([(f"{f:.0%}" if f >= 0.01 else f"{f:.1%}")
                        + (f"\n{int(n_train[f])} frames" if f in n_train else "") for f in fractions])
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("fraction of the labeled training set")
    ax.set_ylabel("test macro-F1")
    ax.set_title("Label efficiency")
    ax.grid(alpha=0.3)
    ax.legend(title="initialisation")
    fig.tight_layout()
    return save_figure(fig, path)
