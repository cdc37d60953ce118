"""The paper's Table 1: precision, recall, F1 and support per class, accuracy, macro and weighted averages.

One sub-column per run (e.g. Baseline and ConVIRT), as in the paper; the numbers are those of
scikit-learn's `classification_report` on the same predictions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from usconvirt.evaluation.metrics import confusion_counts, per_class_report

ROWS = ("Normal Kidneys", "Abnormal Kidneys", "accuracy", "macro-average", "weighted average")
METRIC_COLUMNS = ("precision", "recall", "f1-score")
HEADERS = {"precision": "Precision", "recall": "Recall", "f1-score": "F1-Score", "support": "support"}


def classification_report_dict(labels: np.ndarray, preds: np.ndarray) -> dict[str, dict[str, float]]:
    """Table 1 of one run: {row: {precision, recall, f1-score, support}}; accuracy sits under f1-score."""
    r = {k: float(v) for k, v in per_class_report(confusion_counts(labels, preds)).items()}
    row = {c: {"precision": r[f"precision_{c}"], "recall": r[f"recall_{c}"], "f1-score": r[f"f1_{c}"],
               "support": int(r[f"support_{c}"])} for c in "01"}
    total = int(r["support"])
    averages = {kind: {"precision": r[f"{kind}_precision"], "recall": r[f"{kind}_recall"],
                       "f1-score": r[f"{kind}_f1"], "support": total} for kind in ("macro", "weighted")}
    return {
        ROWS[0]: row["0"],
        ROWS[1]: row["1"],
        ROWS[2]: {"precision": math.nan, "recall": math.nan, "f1-score": r["accuracy"], "support": total},
        ROWS[3]: averages["macro"],
        ROWS[4]: averages["weighted"],
    }


def table1(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Rows ROWS; columns (metric, run) for precision, recall and F1, then support.

    `predictions` maps a run name to a table with integer columns `label` and `pred` (1 = abnormal).
    Support is one column when every run was scored on the same frames, one per run otherwise.
    """
    reports = {name: classification_report_dict(df["label"].to_numpy(int), df["pred"].to_numpy(int))
               for name, df in predictions.items()}
    columns = {}
    for metric in METRIC_COLUMNS:
        for name, report in reports.items():
            columns[(metric, name)] = [report[row][metric] for row in ROWS]
    supports = {name: [report[row]["support"] for row in ROWS] for name, report in reports.items()}
    if len({tuple(s) for s in supports.values()}) == 1:
        columns[("support", "")] = next(iter(supports.values()))
    else:
        columns.update({("support", name): s for name, s in supports.items()})
    table = pd.DataFrame(columns, index=list(ROWS))
    table.columns = pd.MultiIndex.from_tuples(table.columns, names=["metric", "run"])
    return table


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A Markdown table like the paper's, the best run of each cell group in bold when runs differ."""
    runs = [r for r in table.columns.get_level_values("run").unique() if r]
    headers = [f"{HEADERS[m]} ({r})" if r and len(runs) > 1 else HEADERS[m] for m, r in table.columns]
    lines = ["| | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for row in table.index:
        cells = []
        for metric, run in table.columns:
            value = table.at[row, (metric, run)]
            if metric == "support":
                cells.append(str(int(value)))
                continue
            if isinstance(value, float) and math.isnan(value):
                cells.append("")
                continue
            text = f"{value:.{digits}f}"
            group = [round(float(table.at[row, (metric, r)]), digits) for r in runs]
            best = max(group)
            if len(runs) > 1 and round(float(value), digits) == best and group.count(best) == 1:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_flat_frame(table: pd.DataFrame) -> pd.DataFrame:
    """One header row for CSV: `metric/run` columns (plain `support` when shared), the row name first."""
    flat = table.copy()
    flat.columns = [f"{m}/{r}" if r else m for m, r in table.columns]
    return flat.rename_axis("row").reset_index()


def to_json_dict(table: pd.DataFrame) -> dict[str, dict[str, dict[str, float | None]]]:
    """{run: {row: {precision, recall, f1-score, support}}}, NaN as null."""
    runs = [r for r in table.columns.get_level_values("run").unique() if r]
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for run in runs:
        support = ("support", run) if ("support", run) in table.columns else ("support", "")
        out[run] = {}
        for row in table.index:
            cell = {m: table.at[row, (m, run)] for m in METRIC_COLUMNS}
            cell["support"] = table.at[row, support]
            out[run][row] = {k: None if math.isnan(float(v)) else float(v) for k, v in cell.items()}
            out[run][row]["support"] = int(cell["support"])
    return out
