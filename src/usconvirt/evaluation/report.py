"""The readable report of a run directory: one self-contained HTML file (figures embedded as PNG).

Every section reads the files one stage wrote and says "not run" when they are missing, so the
report can be written at any point of a run. Privacy: it shows counts, metrics and figures only;
no report text, sentence or image id reaches the HTML (the zero-shot prompts are the tool's own).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from usconvirt.config import load_yaml
from usconvirt.data.dataset import Dataset, load_dataset
from usconvirt.data.split import split_counts
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, read_table

log = logging.getLogger(__name__)

MAX_MONTAGES = 12
# Column names of the stage tables, as a reader of the report would say them.
DISPLAY_NAMES = {
    "init": "initialisation", "probe_accuracy": "linear probe accuracy",
    "probe_macro_f1": "linear probe macro-F1", "knn_accuracy": "kNN accuracy",
    "silhouette": "silhouette (normal vs abnormal)", "n_train": "train frames", "n_test": "test frames",
    "fraction": "fraction of train set", "macro_f1": "test macro-F1", "accuracy": "test accuracy",
}
METRIC_NAMES = {
    "sensitivity": "sensitivity (recall of abnormal)", "specificity": "specificity (recall of normal)",
    "ppv": "PPV (precision of abnormal)", "npv": "NPV (precision of normal)", "accuracy": "accuracy",
    "macro_f1": "macro-F1", "weighted_f1": "weighted F1", "roc_auc": "ROC-AUC",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { border-bottom: 2px solid #440154; padding-bottom: .2em; }
h2 { margin-top: 2em; color: #440154; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .3em .7em; text-align: right; }
th { background: #f3f0f7; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #ddd; margin: .4em 0; }
.missing { color: #8a6d3b; background: #fcf8e3; padding: .4em .8em; border-radius: 4px; }
.note { color: #555; font-size: 0.9em; }
.montages img { max-width: 32%; }
"""


def write_report(run_dir: str | Path, out: str | Path | None = None, *,
                 dataset: str | Path | None = None) -> Path:
    """Write RUN/report.html (or `out`) atomically from whatever the run directory holds; return its path."""
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError("run directory does not exist", file=run)
    out = Path(out) if out is not None else run / "report.html"
    sections = [
        ("Key results", lambda: summary_section(run)),
        ("Data and pipeline counts", lambda: counts_section(run, _load_run_dataset(run, dataset))),
        ("Organ clustering", lambda: clustering_section(run)),
        ("Image-text pairs", lambda: pairing_section(run)),
        ("Pre-training", lambda: pretraining_section(run)),
        ("Fine-tuning: Table 1", lambda: table1_section(run)),
        ("Representation quality (t-SNE, linear probe, kNN)", lambda: representation_section(run)),
        ("Retrieval and zero-shot", lambda: retrieval_section(run)),
        ("Label efficiency", lambda: label_efficiency_section(run)),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>\n{_safe(build, title)}\n" for title, build in sections)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>usconvirt report: {html.escape(run.resolve().name)}</title>"
            f"<style>{STYLE}</style></head><body>\n"
            f"<h1>usconvirt run report: {html.escape(run.resolve().name)}</h1>\n"
            f"<p class=\"note\">Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from <code>"
            f"{html.escape(str(run))}</code>. Sections follow the paper (Dadoun et al., ISBI 2023): "
            f"data (section 3), pre-training (4), results (5).</p>\n{body}</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written to %s", out)
    return out


def measure_run(run_dir: str | Path, *, dataset: str | Path | None = None, imagenet: bool = False,
                seed: int = 0) -> dict[str, Any]:
    """The report's measures no other stage writes: representation quality, then retrieval and zero-shot.

    Compares random weights with ConVIRT (RUN/pretrain) and, with `imagenet`, ImageNet weights, at the
    pre-training's image size and architecture, so every initialisation sees the same frames.
    """
    from usconvirt.evaluation.representation import RepresentationConfig, representation_quality
    from usconvirt.evaluation.retrieval import heldout_pairs, retrieval_and_zero_shot

    run = Path(run_dir)
    data = _load_run_dataset(run, dataset)
    if data is None or not (run / "split.csv").exists():
        raise InputError("measuring representations needs the run's dataset and split.csv", file=run)
    split = read_table(run / "split.csv")
    pretrain = run / "pretrain"
    saved = pretrain / "config.yaml"
    model = load_yaml(saved).get("model", {}) if saved.exists() else {}
    config = RepresentationConfig(image_size=int(model.get("image_size", 224)),
                                  arch=model.get("image", {}).get("arch", "resnet50"), seed=seed)
    encoders = {"random": "random"}
    if imagenet:
        encoders["ImageNet"] = "imagenet"
    if (pretrain / "image_encoder").is_dir():
        encoders["ConVIRT"] = f"convirt:{pretrain}"
    out = run / "evaluation"
    results: dict[str, Any] = {"representation": representation_quality(data, split, encoders, out, config)}
    if (pretrain / "projections.pt").exists() and (run / "sentences.parquet").exists():
        pairs = heldout_pairs(data, pd.read_parquet(run / "sentences.parquet"), split, part="test")
        test_exams = split.loc[split["part"] == "test", "exam_id"]
        test_ids = data.images.loc[data.images["exam_id"].isin(test_exams), "image_id"].tolist()
        results["retrieval"] = retrieval_and_zero_shot(data, pairs, pretrain, test_ids, out)
    return results


def _safe(build: Callable[[], str], title: str) -> str:
    """A section's HTML; an unreadable input becomes a notice instead of failing the whole report."""
    try:
        return build()
    except (InputError, OSError, ValueError, KeyError) as err:
        log.warning("report section '%s' skipped: %s", title, err)
        return missing(f"could not be read ({html.escape(str(err).splitlines()[0])})")


# --- sections -----------------------------------------------------------------------------------------
def summary_section(run: Path) -> str:
    """A few sentences of headline numbers, each pointing at the section that details it."""
    evaluation = run / "evaluation"
    items = []
    if (evaluation / "metrics.csv").exists():
        ci = metrics_with_ci(read_table(evaluation / "metrics.csv")).set_index("metric")
        if "macro_f1" in ci.index:
            items.append("Test macro-F1 after fine-tuning (95% CI): " + "; ".join(
                f"{html.escape(str(run_name))} {value}" for run_name, value in ci.loc["macro_f1"].items()))
    if (evaluation / "representation.csv").exists():
        rep = read_table(evaluation / "representation.csv")
        items.append("Linear probe accuracy on frozen features: " + "; ".join(
            f"{html.escape(r['init'])} {float(r['probe_accuracy']):.3f}" for _, r in rep.iterrows()))
    zero_shot = _read_json(evaluation / "retrieval.json").get("zero_shot", {})
    if zero_shot:
        items.append(f"Zero-shot normal/abnormal ROC-AUC from French prompts: {zero_shot['roc_auc']:.3f}")
    if not items:
        return missing("no evaluation yet (RUN/evaluation/)")
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def counts_section(run: Path, dataset: Dataset | None) -> str:
    """The counts of paper section 3: exams, patients, frames per part, then what each stage kept."""
    if dataset is None:
        return missing("no dataset found (RUN/dataset or the config's <code>dataset</code>)")
    images, exams = dataset.images, dataset.exams
    parts = [f"<p>{len(exams)} exams from {exams['patient_id'].nunique()} patients, {len(images)} frames "
             f"({len(images) / max(len(exams), 1):.1f} per exam).</p>"]
    split_file = run / "split.csv"
    split = read_table(split_file) if split_file.exists() else None
    if split is not None:
        counts = split_counts(dataset, split).drop(columns="absent").rename(columns={
            "images": "frames", "normal": "normal kidney frames", "abnormal": "abnormal kidney frames"})
        parts.append(html_table(counts))
        parts.append("<p class=\"note\">Kidney frames: frames annotated normal or abnormal (\"absent\" "
                     "frames excluded), as in the paper's section 3.1.</p>")
    else:
        parts.append(missing("split (RUN/split.csv)"))
    pool = None if split is None else set(split.loc[split["part"] == "pretrain", "exam_id"])
    pipeline = pipeline_counts(run, pool)
    if pipeline:
        parts.append("<h3>Pre-training set (paper sections 3.2 to 3.4)</h3>")
        parts.append(html_table(pd.DataFrame(list(pipeline.items()), columns=["step", "count"])))
    return "\n".join(parts)


def pipeline_counts(run: Path, pretrain_exams: set[str] | None = None) -> dict[str, int]:
    """Frames clustered and kept, exams mentioning the kidney, pairs: the paper's Fig. 2 funnel.

    Sentences count within the pre-training exams when the split is known (paper: 5,891 of 6,960).
    """
    counts: dict[str, int] = {} if pretrain_exams is None else {"pre-training exams": len(pretrain_exams)}
    cluster = _read_json(run / "cluster" / "metrics.json")
    if "frames" in cluster:
        counts["frames clustered"] = int(cluster["frames"])
    if (run / "cluster" / "selected.csv").exists():
        selected = read_table(run / "cluster" / "selected.csv")
        counts["frames assigned to kidney clusters"] = len(selected)
    if (run / "sentences.parquet").exists():
        sentences = pd.read_parquet(run / "sentences.parquet", columns=["exam_id", "organ"])
        kidney = sentences[sentences["organ"] == "kidney"]
        if pretrain_exams is not None:
            kidney = kidney[kidney["exam_id"].isin(pretrain_exams)]
        counts["kidney sentences"] = len(kidney)
        counts["exams whose report mentions the kidney"] = kidney["exam_id"].nunique()
    if (run / "pairs.parquet").exists():
        pairs = pd.read_parquet(run / "pairs.parquet", columns=["image_id", "exam_id"])
        counts["image-text pairs"] = len(pairs)
        counts["exams with pairs"] = pairs["exam_id"].nunique()
        if "frames assigned to kidney clusters" in counts:
            counts["kidney frames without text"] = counts["frames assigned to kidney clusters"] - len(pairs)
    return counts


def clustering_section(run: Path) -> str:
    metrics = _read_json(run / "cluster" / "metrics.json")
    if not metrics:
        return missing("clustering (RUN/cluster/metrics.json)")
    parts = [json_tables(metrics),
             "<p class=\"note\">Precision, recall and F1 of the cluster-to-organ mapping on frames with an "
             "organ annotation. The paper reports a weighted F1 of 66.75% and a kidney F1 of 71.5%.</p>"]
    montages = sorted((run / "cluster" / "montages").glob("*.png"))
    if montages:
        parts.append(f"<h3>Cluster montages ({min(len(montages), MAX_MONTAGES)} of {len(montages)})</h3>"
                     "<div class=\"montages\">" + "".join(png_tag(p) for p in montages[:MAX_MONTAGES])
                     + "</div>")
    return "\n".join(parts)


def pairing_section(run: Path) -> str:
    accounting = _read_json(run / "pairs.json")
    if accounting:
        return json_tables(accounting)
    if (run / "pairs.parquet").exists():
        return "<p>Counts in the pipeline table above (no RUN/pairs.json accounting found).</p>"
    return missing("pairing (RUN/pairs.parquet)")


def pretraining_section(run: Path) -> str:
    loss_file = run / "pretrain" / "loss.csv"
    if not loss_file.exists():
        return missing("pre-training (RUN/pretrain/loss.csv)")
    curve = read_table(loss_file).apply(pd.to_numeric, errors="coerce")
    if curve.empty:
        return missing("pre-training: RUN/pretrain/loss.csv has no rows yet")
    return (png_tag(loss_curve_png(curve)) + f"<p class=\"note\">InfoNCE loss of ConVIRT pre-training "
            f"({len(curve)} logged steps; final {curve['loss'].dropna().iloc[-1]:.3f}).</p>")


def table1_section(run: Path) -> str:
    evaluation = run / "evaluation"
    parts = []
    if (evaluation / "table1.csv").exists():
        parts.append(table1_html(read_table(evaluation / "table1.csv")))
        parts.append("<p class=\"note\">Test frames, per class and averaged, laid out as the paper's Table 1 "
                     "(one column per initialisation).</p>")
    elif (evaluation / "table1.md").exists():
        parts.append(f"<pre>{html.escape((evaluation / 'table1.md').read_text(encoding='utf-8'))}</pre>")
    else:
        parts.append(missing("evaluation (RUN/evaluation/table1.csv)"))
    if (evaluation / "metrics.csv").exists():
        parts.append("<h3>Detection metrics, 95% confidence intervals from a patient bootstrap</h3>")
        table = metrics_with_ci(read_table(evaluation / "metrics.csv"))
        parts.append(html_table(table.assign(metric=table["metric"].map(lambda m: METRIC_NAMES.get(m, m)))))
    runs = finetune_runs(run)
    if not runs.empty:
        parts.append("<h3>Fine-tuning runs</h3>" + html_table(runs))
    return "\n".join(parts)


def table1_html(flat: pd.DataFrame) -> str:
    """Table 1 with the `metric/run` columns of table1.csv as a two-level header, as in the paper."""
    numeric = flat.set_index(flat.columns[0]).apply(pd.to_numeric, errors="coerce")
    shown = numeric.map(lambda v: "" if pd.isna(v) else _number(v))
    shown.columns = pd.MultiIndex.from_tuples([tuple(c.split("/", 1)) if "/" in c else (c, "")
                                               for c in shown.columns])
    shown.index.name = None
    return shown.to_html(escape=True, border=0)


def metrics_with_ci(long: pd.DataFrame) -> pd.DataFrame:
    """metrics.csv (run, metric, value, ci_low, ci_high) as 'value (low to high)' cells, metric by run."""
    def cell(row: pd.Series) -> str:
        value, low, high = (pd.to_numeric(row[c], errors="coerce") for c in ("value", "ci_low", "ci_high"))
        if pd.isna(value):
            return "n/a"
        return f"{value:.3f}" + ("" if pd.isna(low) or pd.isna(high) else f" ({low:.3f} to {high:.3f})")

    cells = long.assign(cell=long.apply(cell, axis=1))
    table = cells.pivot(index="metric", columns="run", values="cell").reindex(
        index=list(dict.fromkeys(long["metric"])), columns=list(dict.fromkeys(long["run"])))
    return table.fillna("n/a").rename_axis(None, axis=1).reset_index()


def finetune_runs(run: Path) -> pd.DataFrame:
    """One row per RUN/finetune/NAME: initialisation, loss, selected epoch, validation and test macro-F1."""
    rows = []
    for metrics_file in sorted((run / "finetune").glob("*/metrics.json")):
        m = _read_json(metrics_file)
        rows.append({"run": metrics_file.parent.name, "loss": m.get("loss"),
                     "best epoch": m.get("best_epoch"),
                     "train frames": m.get("frames", {}).get("train"),
                     "val macro-F1": m.get("val", {}).get("macro_f1"),
                     "test macro-F1": m.get("test", {}).get("macro_f1")})
    return pd.DataFrame(rows)


def representation_section(run: Path) -> str:
    evaluation = run / "evaluation"
    if not (evaluation / "representation.csv").exists():
        return missing("representation quality (RUN/evaluation/representation.csv)")
    parts = [html_table(read_table(evaluation / "representation.csv")),
             "<p class=\"note\">Frozen encoder features of the kidney frames. Linear probe: logistic "
             "regression trained on the train part, scored on test. kNN: cosine-distance vote. Silhouette: "
             "normal vs abnormal on test (-1 to 1, higher means better separated).</p>"]
    if (evaluation / "tsne.png").exists():
        parts.append(png_tag(evaluation / "tsne.png"))
        parts.append("<p class=\"note\">t-SNE of the encoded test frames (scikit-learn defaults, as in the "
                     "paper's Fig. 4): purple normal kidneys, yellow abnormal kidneys.</p>")
    return "\n".join(parts)


def retrieval_section(run: Path) -> str:
    result = _read_json(run / "evaluation" / "retrieval.json")
    if not result:
        return missing("retrieval and zero-shot (RUN/evaluation/retrieval.json)")
    parts = []
    if "retrieval" in result:
        r = result["retrieval"]
        recalls = pd.DataFrame({"direction": ["image to text", "text to image"]}).join(
            pd.DataFrame([r["image_to_text"], r["text_to_image"]]))
        parts.append(html_table(recalls))
        parts.append(f"<p class=\"note\">Recall@k on held-out pairs ({r['n_images']} frames, {r['n_texts']} "
                     "distinct descriptions): the share of queries whose match is among the k nearest.</p>")
    if "zero_shot" in result:
        parts.append("<h3>Zero-shot normal/abnormal</h3>" + json_tables(result["zero_shot"]))
        prompts = result.get("prompts", {})
        parts.append("<p class=\"note\">Prompts: " + "; ".join(
            f"{html.escape(k)}: " + ", ".join(f"&laquo;{html.escape(p)}&raquo;" for p in v)
            for k, v in prompts.items()) + "</p>")
    return "\n".join(parts)


def label_efficiency_section(run: Path) -> str:
    evaluation = run / "evaluation"
    if not (evaluation / "label_efficiency.csv").exists():
        return missing("label efficiency (RUN/evaluation/label_efficiency.csv)")
    parts = [html_table(read_table(evaluation / "label_efficiency.csv"))]
    if (evaluation / "label_efficiency.png").exists():
        parts.append(png_tag(evaluation / "label_efficiency.png"))
    return "\n".join(parts)


# --- HTML building blocks -----------------------------------------------------------------------------
def missing(what: str) -> str:
    return f"<p class=\"missing\">Not run: {what}.</p>"


def html_table(df: pd.DataFrame) -> str:
    """An escaped HTML table; numbers that are really numbers get three decimals."""
    shown = df.rename(columns=DISPLAY_NAMES)
    for column in shown.columns:
        numeric = pd.to_numeric(shown[column], errors="coerce")
        if numeric.notna().all() and len(shown):
            shown[column] = numeric.map(_number)
    return shown.to_html(index=False, escape=True, border=0, na_rep="n/a")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def json_tables(data: dict[str, Any]) -> str:
    """Any JSON object as tables: its flat values as key/value rows, dicts of dicts as matrices."""
    flat: dict[str, Any] = {}
    matrices = []
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            matrix = pd.DataFrame.from_dict(
                {k: {c: _cell(x) for c, x in _flatten(v).items()} for k, v in value.items()}, orient="index")
            matrices.append(f"<h4>{html.escape(str(key))}</h4>"
                            + html_table(matrix.rename_axis(str(key)).reset_index()))
        else:
            flat.update(_flatten({key: value}))
    rows = pd.DataFrame({"": list(flat), "value": [_cell(v) for v in flat.values()]})
    return (html_table(rows) if flat else "") + "".join(matrices)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name} / "))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(_number(v) if isinstance(v, int | float) else str(v) for v in value)
    return value


def png_tag(source: Path | bytes) -> str:
    """An <img> with the PNG embedded as base64, so the report is one file that travels alone."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    alt = "figure" if isinstance(source, bytes) else html.escape(Path(source).stem)
    return f"<img alt=\"{alt}\" src=\"data:image/png;base64,{base64.b64encode(data).decode()}\">"


def loss_curve_png(curve: pd.DataFrame) -> bytes:
    """PNG of every logged loss column against the step (or row order), with a smoothed trend."""
    x = curve["step"] if "step" in curve else pd.Series(range(len(curve)))
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.subplots()
    for column in [c for c in curve.columns if "loss" in c]:
        y = curve[column]
        (raw,) = ax.plot(x, y, alpha=0.35, linewidth=1, label=f"{column} (per step)")
        window = max(1, len(y) // 20)
        if window > 1:
            ax.plot(x, y.rolling(window, min_periods=1).mean(), linewidth=2, color=raw.get_color(),
                    label=f"{column} (mean of {window})")
    ax.set_xlabel("step" if "step" in curve else "logged point")
    ax.set_ylabel("contrastive loss")
    ax.set_title("ConVIRT pre-training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


# --- inputs -------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err}", file=path) from err
    return data if isinstance(data, dict) else {"value": data}


def _load_run_dataset(run: Path, dataset: str | Path | None) -> Dataset | None:
    """The dataset given, else the run config's `dataset`, else RUN/dataset; None when there is none."""
    if dataset is None and (run / "config.resolved.yaml").exists():
        dataset = load_yaml(run / "config.resolved.yaml").get("dataset")
    root = Path(dataset) if dataset else run / "dataset"
    if not root.is_dir():
        return None
    return load_dataset(root, check_files=False)
