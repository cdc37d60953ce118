"""The readable report of a run directory: one self-contained HTML file (figures embedded as PNG).

`report_data` reads the run directory into a plain structure (sections of blocks from `report_blocks`:
text, warnings, tables of display strings, figures as data URIs); `write_report` renders it with the
Jinja2 template `resources/templates/report.html.j2`, autoescaped. Every section reads the files one
stage wrote and says "Not run" when they are missing, so the report can be written at any point of a
run; the parts for files that only some runs have (controls, diagnostics) appear only when the files
exist. Privacy: counts, metrics and figures only; no report text, sentence or image id reaches the HTML
(the zero-shot prompts are the tool's own).
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from usconvirt.bundle.overlays import overlay_image
from usconvirt.config import load_yaml
from usconvirt.data.dataset import Dataset
from usconvirt.data.split import exams_in, read_split, split_counts
from usconvirt.errors import InputError
from usconvirt.evaluation.evaluate import read_predictions
from usconvirt.evaluation.report_blocks import (
    Block,
    error,
    figure,
    flatten,
    format_number,
    format_share,
    json_tables,
    missing,
    table,
    text,
    warnings_block,
)
from usconvirt.evaluation.report_figures import epoch_ratio_png, loss_curve_png, pointing_game_png
from usconvirt.evaluation.report_maps import (
    InitMaps,
    finetune_dirs,
    gallery_rows,
    init_maps,
    kidney_regions,
    pointing_game,
)
from usconvirt.evaluation.run_inputs import load_run_dataset, pretraining_runs, read_json
from usconvirt.io import atomic_path, read_table
from usconvirt.pairing import load_pairs
from usconvirt.run_layout import (
    CLUSTER_MAPPING,
    DIAGNOSTICS,
    EPOCH_LOSS,
    LABEL_EFFICIENCY_PLOT,
    LABEL_EFFICIENCY_TABLE,
    LOSS,
    METRICS_JSON,
    METRICS_TABLE,
    MONTAGES_DIR,
    PREDICTIONS,
    REPRESENTATION,
    RETRIEVAL,
    TABLE1_CSV,
    TABLE1_MD,
    TSNE_PLOT,
    RunLayout,
)
from usconvirt.text.sentence_table import read_sentences

log = logging.getLogger(__name__)

MAX_MONTAGES = 12
WARN = "\u26a0"  # the mark of a run that needs a look (collapsed, learned little)
# Fine-tuning runs in the order a reader compares them: the baseline, the method, then the references.
RUN_ORDER = ("random", "convirt", "convirt-equiv", "imagenet", "shuffled", "simclr", "report_labels")
METRIC_NAMES = {
    "sensitivity": "sensitivity (recall of abnormal)", "specificity": "specificity (recall of normal)",
    "ppv": "PPV (precision of abnormal)", "npv": "NPV (precision of normal)", "accuracy": "accuracy",
    "macro_f1": "macro-F1", "weighted_f1": "weighted F1", "roc_auc": "ROC-AUC",
}


def write_report(run: str | Path | RunLayout, out: str | Path | None = None, *,
                 dataset: str | Path | None = None) -> Path:
    """Write the report (the layout's, RUN/report.html, or `out`) atomically from whatever the run holds;
    return its path. `run`: the run directory, or its layout when the stages' files lie elsewhere."""
    layout = RunLayout.of(run)
    out = Path(out) if out is not None else layout.report
    page = render_report(report_data(layout, dataset=dataset))
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    log.info("report written to %s", out)
    return out


def render_report(data: dict[str, Any]) -> str:
    """The HTML page of a `report_data` structure."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("usconvirt", "resources/templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    return env.get_template("report.html.j2").render(**data)


def report_data(run: str | Path | RunLayout, *, dataset: str | Path | None = None) -> dict[str, Any]:
    """The report as plain data: title, provenance and the sections, each a title and a list of blocks."""
    layout = RunLayout.of(run)
    if not layout.out.is_dir():
        raise InputError("run directory does not exist", file=layout.out)
    data = functools.cache(lambda: load_run_dataset(layout, dataset))  # read once, by the first section
    sections: list[tuple[str, Callable[[], list[Block]]]] = [
        ("Key results", lambda: summary_section(layout)),
        ("Data and pipeline counts", lambda: counts_section(layout, data())),
        ("Organ clustering", lambda: clustering_section(layout)),
        ("Image-text pairs", lambda: pairing_section(layout)),
        ("Pre-training", lambda: pretraining_section(layout)),
        ("Fine-tuning: Table 1", lambda: table1_section(layout)),
        ("Where the classifiers look (Grad-CAM)", lambda: maps_section(layout, data())),
        ("Representation quality (t-SNE, linear probe, kNN)", lambda: representation_section(layout)),
        ("Retrieval and zero-shot", lambda: retrieval_section(layout)),
        ("Label efficiency", lambda: label_efficiency_section(layout)),
    ]
    return {"name": layout.out.resolve().name, "run_dir": str(layout.out),
            "generated": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "sections": [{"title": title, "blocks": _safe(build, title)} for title, build in sections]}


def _safe(build: Callable[[], list[Block]], title: str) -> list[Block]:
    """A section's blocks; an unreadable input becomes a notice instead of failing the whole report."""
    try:
        return build()
    except (InputError, OSError, ValueError, KeyError) as err:
        log.warning("report section '%s' skipped: %s", title, err)
        return [error(str(err).splitlines()[0])]


# --- sections -----------------------------------------------------------------------------------------
def summary_section(layout: RunLayout) -> list[Block]:
    """A few sentences of headline numbers, each pointing at the section that details it."""
    evaluation = layout.evaluation
    items = []
    if (evaluation / METRICS_TABLE).exists():
        ci = metrics_with_ci(read_table(evaluation / METRICS_TABLE)).set_index("metric")
        if "macro_f1" in ci.index:
            items.append("Test macro-F1 after fine-tuning (95% CI): " + "; ".join(
                f"{run_name} {value}" for run_name, value in ci.loc["macro_f1"].items()))
    if (evaluation / REPRESENTATION).exists():
        rep = read_table(evaluation / REPRESENTATION)
        items.append("Linear probe accuracy on frozen features: " + "; ".join(
            f"{r['init']} {float(r['probe_accuracy']):.3f}" for _, r in rep.iterrows()))
    zero_shot = read_json(evaluation / RETRIEVAL).get("zero_shot", {})
    if zero_shot:
        items.append(f"Zero-shot normal/abnormal ROC-AUC from French prompts: {zero_shot['roc_auc']:.3f}")
    alerts = [f"fine-tuning run {name} predicts one class ({', '.join(parts)}): see Fine-tuning runs"
              for name, parts in collapsed_runs(layout).items()]
    alerts += [f"pre-training {name} learned little (last-epoch loss {d['ratio']:.0%} of chance)"
               for name, d in pretraining_diagnostics(layout).items() if d.get("warning")]
    if not items and not alerts:
        return [missing("no evaluation yet (RUN/evaluation/)")]
    return warnings_block(alerts) + ([{"kind": "list", "items": items}] if items else [])


def counts_section(layout: RunLayout, dataset: Dataset | None) -> list[Block]:
    """The counts of paper section 3: exams, patients, frames per part, then what each stage kept."""
    if dataset is None:
        return [missing("no dataset found (RUN/dataset or the config's `dataset`)")]
    images, exams = dataset.images, dataset.exams
    blocks = [text(f"{len(exams)} exams from {exams['patient_id'].nunique()} patients, {len(images)} frames "
                   f"({len(images) / max(len(exams), 1):.1f} per exam).")]
    split = read_split(layout.split) if layout.split.exists() else None
    if split is not None:
        counts = split_counts(dataset, split)
        counts = counts[(counts["part"] != "excluded") | (counts["exams"] > 0)]
        blocks.append(table(counts.drop(columns="absent").rename(columns={
            "images": "frames", "normal": "normal kidney frames", "abnormal": "abnormal kidney frames"})))
        blocks.append(text("Kidney frames: frames annotated normal or abnormal (\"absent\" frames excluded), "
                           "as in the paper's section 3.1. train/val/test hold labelled patients only; "
                           "excluded: unlabelled exams of those patients (docs/data-format.md).", "note"))
    else:
        blocks.append(missing("split (RUN/split.csv)"))
    pool = None if split is None else exams_in(split, "pretrain")
    pipeline = pipeline_counts(layout, pool)
    if pipeline:
        blocks.append(text("Pre-training set (paper sections 3.2 to 3.4)", "heading"))
        blocks.append(table(pd.DataFrame(list(pipeline.items()), columns=["step", "count"])))
    return blocks


def pipeline_counts(layout: RunLayout, pretrain_exams: set[str] | None = None) -> dict[str, int]:
    """Frames clustered and kept, exams mentioning the kidney, pairs: the paper's Fig. 2 funnel.

    Sentences count within the pre-training exams when the split is known (paper: 5,891 of 6,960).
    """
    counts: dict[str, int] = {} if pretrain_exams is None else {"pre-training exams": len(pretrain_exams)}
    cluster = read_json(layout.cluster / METRICS_JSON)
    if "frames" in cluster:
        counts["frames clustered"] = int(cluster["frames"])
    if layout.selected.exists():
        selected = read_table(layout.selected)
        counts["frames assigned to kidney clusters"] = len(selected)
    if layout.sentences.exists():
        sentences = read_sentences(layout.sentences)
        kidney = sentences[sentences["organ"] == "kidney"]
        if pretrain_exams is not None:
            kidney = kidney[kidney["exam_id"].isin(pretrain_exams)]
        counts["kidney sentences"] = len(kidney)
        counts["exams whose report mentions the kidney"] = kidney["exam_id"].nunique()
    if layout.pairs.exists():
        pairs = load_pairs(layout.pairs)
        counts["image-text pairs"] = len(pairs)
        counts["exams with pairs"] = pairs["exam_id"].nunique()
        if "frames assigned to kidney clusters" in counts:
            counts["kidney frames without text"] = counts["frames assigned to kidney clusters"] - len(pairs)
    return counts


def clustering_section(layout: RunLayout) -> list[Block]:
    """What the clustering found, per organ, and what its clusters look like."""
    metrics = read_json(layout.cluster / METRICS_JSON)
    if not metrics:
        return [missing("clustering (RUN/cluster/metrics.json)")]
    blocks = warnings_block([str(w) for w in metrics.get("warnings") or []])
    blocks.append(text(clustering_summary(metrics)))
    mapping = cluster_mapping(layout, metrics)
    organs = organ_table(metrics, mapping)
    if not organs.empty:
        blocks.append(table(organs))
        blocks.append(text("Per organ: the clusters mapped to it and their frames, then precision, recall "
                           f"and F1 of the mapping on {metrics.get('headline', 'annotated frames')}. The "
                           "paper reports a weighted F1 of 66.75% and a kidney F1 of 71.5%.", "note"))
    baselines = metrics.get("baselines")
    if isinstance(baselines, dict) and baselines:
        rows = pd.DataFrame.from_dict({m: flatten(s) if isinstance(s, dict) else {"score": s}
                                       for m, s in baselines.items()}, orient="index")
        blocks.append(text("Baselines computed in the same run", "heading"))
        if "chosen" not in rows:  # metrics written before the stage chose among candidates
            rows["used by this run"] = ["yes" if m == metrics.get("method") else "" for m in rows.index]
        blocks.append(table(rows.rename_axis("method").reset_index()))
        selection = metrics.get("selection") or {}
        if selection.get("why"):
            blocks.append(text(f"Chosen: {selection['chosen']}: {selection['why']}.", "note"))
    montages = sorted((layout.cluster / MONTAGES_DIR).glob("*.png"))
    if montages:
        kidney_first = sorted(montages, key=lambda p: (_montage_organ(p, mapping) != "kidney", p.name))
        shown = kidney_first[:MAX_MONTAGES]
        blocks.append(text(f"Cluster montages ({len(shown)} of {len(montages)}, kidney clusters first)",
                           "heading"))
        sizes = metrics.get("cluster_sizes")
        blocks.append({"kind": "gallery", "images": [
            figure(p) | {"caption": _montage_caption(p, mapping, sizes)} for p in shown]})
    return blocks


def clustering_summary(metrics: dict[str, Any]) -> str:
    """One sentence of the method, the frames, the kidney selection and the headline scores."""
    words = [f"Method {metrics.get('method', 'deep')}"]
    clusters = metrics.get("kmeans_clusters") or metrics.get("clusters")
    if "frames" in metrics:
        words.append(f" on {metrics['frames']} pre-training frames"
                     + (f" ({clusters} clusters)" if clusters else ""))
    if "selected" in metrics:
        words.append(f"; {metrics['selected']} frames kept as kidney")
    if "mapping_source" in metrics:
        words.append(f"; clusters named from the {metrics['mapping_source']}")
    if "weighted_f1" in metrics:
        words.append(f". On {metrics.get('headline', 'annotated frames')}: weighted F1 "
                     f"{format_number(metrics['weighted_f1'])}, "
                     f"kidney F1 {format_number(metrics.get('kidney_f1'))}")
    return "".join(words) + "."


def organ_table(metrics: dict[str, Any], mapping: dict[int | str, str]) -> pd.DataFrame:
    """One row per organ: its clusters and their frames (mapping), and the mapping's scores (per_organ)."""
    by_organ = mapping_by_organ(mapping, metrics.get("cluster_sizes")).set_index("organ") if mapping else None
    scores = pd.DataFrame.from_dict(metrics.get("per_organ") or {}, orient="index")
    if by_organ is None and scores.empty:
        return pd.DataFrame()
    joined = scores if by_organ is None else by_organ.join(scores, how="outer")
    joined = joined.rename(columns={"frames": "frames in its clusters", "support": "annotated frames"})
    ordered = [c for c in ("clusters", "frames in its clusters", "precision", "recall", "f1",
                           "annotated frames") if c in joined]
    return joined[ordered].rename(columns={"f1": "F1"}).rename_axis("organ").reset_index()


def _montage_cluster(path: Path) -> int | None:
    digits = path.stem.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else None


def _montage_organ(path: Path, mapping: dict[int | str, str]) -> str:
    return mapping.get(_montage_cluster(path), "") or "(unmapped)"


def _montage_caption(path: Path, mapping: dict[int | str, str], sizes: Any) -> str:
    cluster = _montage_cluster(path)
    frames = f", {sizes[cluster]} frames" if isinstance(sizes, list) and cluster is not None and \
        0 <= cluster < len(sizes) else ""
    return f"cluster {cluster}: {_montage_organ(path, mapping)}{frames}"


def cluster_mapping(layout: RunLayout, metrics: dict[str, Any]) -> dict[int | str, str]:
    """Cluster -> organ: metrics.json's `mapping`, else cluster/mapping.yaml; clusters in numeric order."""
    mapping = metrics.get("mapping")
    if not isinstance(mapping, dict) and (layout.cluster / CLUSTER_MAPPING).exists():
        mapping = load_yaml(layout.cluster / CLUSTER_MAPPING)
    if not isinstance(mapping, dict):
        return {}
    keyed = {int(k) if str(k).lstrip("-").isdigit() else str(k): "" if v is None else str(v)
             for k, v in mapping.items()}
    return dict(sorted(keyed.items(), key=lambda item: (isinstance(item[0], str), item[0])))


def mapping_by_organ(mapping: dict[int | str, str], sizes: Any) -> pd.DataFrame:
    """One row per organ (unmapped last): its clusters and, with cluster sizes, their frames."""
    organs = sorted({o or "(unmapped)" for o in mapping.values()}, key=lambda o: (o == "(unmapped)", o))
    rows = []
    for organ in organs:
        clusters = [c for c, o in mapping.items() if (o or "(unmapped)") == organ]
        row: dict[str, Any] = {"organ": organ, "clusters": ", ".join(map(str, clusters))}
        if isinstance(sizes, list) and all(isinstance(c, int) and 0 <= c < len(sizes) for c in clusters):
            row["frames"] = sum(int(sizes[c]) for c in clusters)
        rows.append(row)
    return pd.DataFrame(rows)


def pairing_section(layout: RunLayout) -> list[Block]:
    accounting = read_json(layout.pairs_accounting)
    if accounting:
        return json_tables(accounting)
    if layout.pairs.exists():
        return [text("Counts in the pipeline table above (no RUN/pairs.json accounting found).")]
    return [missing("pairing (RUN/pairs.parquet)")]


def pretraining_diagnostics(layout: RunLayout) -> dict[str, dict[str, Any]]:
    """Name -> diagnostics.json of every pre-training run that wrote one."""
    return {name: d for name, directory in pretraining_runs(layout).items()
            if (d := read_json(directory / DIAGNOSTICS))}


def pretraining_section(layout: RunLayout) -> list[Block]:
    runs = pretraining_runs(layout)
    curves = {name: _numeric(read_table(d / LOSS)) for name, d in runs.items() if (d / LOSS).exists()}
    epochs = {name: _numeric(read_table(d / EPOCH_LOSS)) for name, d in runs.items()
              if (d / EPOCH_LOSS).exists()}
    diagnostics = pretraining_diagnostics(layout)
    if not curves and not epochs and not diagnostics:
        return [missing("pre-training (RUN/pretrain/loss.csv)")]
    blocks: list[Block] = []
    if diagnostics:
        rows = [diagnostics_row(name, d, epochs.get(name)) for name, d in diagnostics.items()]
        blocks.append(table(pd.DataFrame(rows), marks=[bool(d.get("warning")) for d in diagnostics.values()]))
        blocks.append(text("Chance: the loss of uniform similarities, ln(batch) for ConVIRT's InfoNCE "
                           "(ln(2 batch - 1) for the SimCLR control; GCE at p = 1/2 for the report-label "
                           "control). A last-epoch mean loss above 0.9 x "
                           "chance is flagged: the model learned little. Held-out retrieval: image-to-text "
                           "Recall@k on pre-training pairs of exams kept out of training.", "note"))
    if epochs:
        blocks.append(figure(epoch_ratio_png(epochs), "mean loss per epoch against chance"))
    curves = {name: c for name, c in curves.items() if not c.empty and "loss" in c}
    if curves:
        blocks.append(figure(loss_curve_png(curves), "pre-training loss"))
        blocks.append(text("Per-step contrastive loss of each pre-training run ("
                           + "; ".join(f"{n}: {len(c)} logged steps, final {c['loss'].dropna().iloc[-1]:.3f}"
                                       for n, c in curves.items()) + ").", "note"))
    elif not epochs:
        blocks.append(missing("pre-training: RUN/pretrain/loss.csv has no rows yet"))
    return blocks


def diagnostics_row(name: str, d: dict[str, Any], epochs: pd.DataFrame | None) -> dict[str, Any]:
    """One table row of a diagnostics.json: losses against chance and held-out Recall@k."""
    retrieval = d.get("heldout_retrieval") or {}
    first = None if epochs is None or epochs.empty else epochs["mean_loss"].iloc[0]
    return {"run": name, "first-epoch mean loss": first,
            "last-epoch mean loss": d.get("last_epoch_mean_loss"),
            "chance": d.get("chance"), "last / chance": d.get("ratio"),
            "learned little": f"{WARN} yes" if d.get("warning") else "no",
            "held-out R@1": retrieval.get("r@1"), "R@5": retrieval.get("r@5"), "R@10": retrieval.get("r@10"),
            "held-out pairs": retrieval.get("n")}


def table1_section(layout: RunLayout) -> list[Block]:
    evaluation = layout.evaluation
    blocks = []
    if (evaluation / TABLE1_CSV).exists():
        blocks.append(table1_block(read_table(evaluation / TABLE1_CSV)))
        blocks.append(text("Test frames, per class and averaged, laid out as the paper's Table 1 (one column "
                           "per initialisation).", "note"))
    elif (evaluation / TABLE1_MD).exists():
        blocks.append({"kind": "pre", "text": (evaluation / TABLE1_MD).read_text(encoding="utf-8")})
    else:
        blocks.append(missing("evaluation (RUN/evaluation/table1.csv)"))
    if (evaluation / METRICS_TABLE).exists():
        blocks.append(text("Detection metrics, 95% confidence intervals from a patient bootstrap", "heading"))
        ci = metrics_with_ci(read_table(evaluation / METRICS_TABLE))
        blocks.append(table(ci.assign(metric=ci["metric"].map(lambda m: METRIC_NAMES.get(m, m)))))
    runs = finetune_runs(layout)
    if runs:
        blocks.append(text("Fine-tuning runs", "heading"))
        blocks.append(table(pd.DataFrame([r["row"] for r in runs]), marks=[r["collapsed"] for r in runs]))
        if any("val predicted abnormal" in r["row"] for r in runs):
            blocks.append(text("Predicted abnormal: the share of frames the selected checkpoint calls "
                               "abnormal, beside the true share. A run predicting one class for nearly all "
                               f"frames is marked {WARN} collapsed.", "note"))
        blocks += warnings_block([f"{r['name']}: {w}" for r in runs for w in r["warnings"]])
    return blocks


def table1_block(flat: pd.DataFrame) -> Block:
    """Table 1 with the `metric/run` columns of table1.csv as a two-level header, as in the paper."""
    numeric = flat.set_index(flat.columns[0]).apply(pd.to_numeric, errors="coerce")
    pairs = [tuple(c.split("/", 1)) if "/" in c else (c, "") for c in numeric.columns]
    groups = [{"name": "", "span": 1}]
    for metric, _ in pairs:
        if groups[-1]["name"] == metric and len(groups) > 1:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": metric, "span": 1})
    rows = [[str(index), *("" if pd.isna(v) else format_number(v) for v in values)]
            for index, values in zip(numeric.index, numeric.to_numpy(), strict=True)]
    return {"kind": "table", "groups": groups, "columns": ["", *(run_name for _, run_name in pairs)],
            "rows": rows, "numeric": [False] + [True] * len(pairs), "marks": [False] * len(rows)}


def interval_cell(value, low, high, sign: str = "") -> str:
    """'value (low to high)' with three decimals (sign "+": signed, for differences); 'n/a' without a
    value, the value alone without an interval."""
    value, low, high = (pd.to_numeric(v, errors="coerce") for v in (value, low, high))
    if pd.isna(value):
        return "n/a"
    shown = f"{value:{sign}.3f}"
    return shown if pd.isna(low) or pd.isna(high) else f"{shown} ({low:{sign}.3f} to {high:{sign}.3f})"


def metrics_with_ci(long: pd.DataFrame) -> pd.DataFrame:
    """metrics.csv (run, metric, value, ci_low, ci_high) as 'value (low to high)' cells, metric by run."""
    cells = long.assign(cell=[interval_cell(*r) for r in
                              long[["value", "ci_low", "ci_high"]].itertuples(index=False)])
    wide = cells.pivot(index="metric", columns="run", values="cell").reindex(
        index=list(dict.fromkeys(long["metric"])), columns=list(dict.fromkeys(long["run"])))
    return wide.fillna("n/a").rename_axis(None, axis=1).reset_index()


def finetune_runs(layout: RunLayout) -> list[dict[str, Any]]:
    """Per RUN/finetune/NAME: its table row, whether it collapsed, and its warnings; controls included.

    The row: initialisation, loss, selected epoch, train frames, validation and test macro-F1, and where
    metrics.json has them, the predicted and true abnormal shares of validation and test.
    """
    files = sorted(layout.finetune.glob(f"*/{METRICS_JSON}"), key=lambda f: _run_rank(f.parent.name))
    runs = []
    for metrics_file in files:
        m = read_json(metrics_file)
        name = metrics_file.parent.name
        row = {"run": name, "loss": m.get("loss"), "best epoch": m.get("best_epoch"),
               "train frames": m.get("frames", {}).get("train"),
               "val macro-F1": m.get("val", {}).get("macro_f1"),
               "test macro-F1": m.get("test", {}).get("macro_f1")}
        collapsed = [part for part in ("val", "test") if m.get(part, {}).get("collapsed")]
        for part in ("val", "test"):
            block = m.get(part, {})
            if "pred_abnormal_share" in block or "true_abnormal_share" in block:
                row[f"{part} predicted abnormal"] = format_share(block.get("pred_abnormal_share"))
                row[f"{part} true abnormal"] = format_share(block.get("true_abnormal_share"))
        if any("collapsed" in m.get(part, {}) for part in ("val", "test")):
            row["collapsed"] = f"{WARN} collapsed ({', '.join(collapsed)})" if collapsed else "no"
        runs.append({"name": name, "row": row, "collapsed": bool(collapsed),
                     "warnings": [str(w) for w in m.get("warnings") or []]})
    return runs


def collapsed_runs(layout: RunLayout) -> dict[str, list[str]]:
    """Fine-tuning run name -> the parts (val, test) on which it predicts one class."""
    out = {}
    for metrics_file in sorted(layout.finetune.glob(f"*/{METRICS_JSON}")):
        m = read_json(metrics_file)
        parts = [part for part in ("val", "test") if m.get(part, {}).get("collapsed")]
        if parts:
            out[metrics_file.parent.name] = parts
    return out


def _run_rank(name: str) -> tuple[int, str]:
    return (RUN_ORDER.index(name) if name in RUN_ORDER else len(RUN_ORDER), name)


def maps_section(layout: RunLayout, dataset: Dataset | None) -> list[Block]:
    """Per init: the pointing game (synthetic corpora) and its most wrong test frames with their maps."""
    directories = finetune_dirs(layout)
    if not directories:
        return [missing("fine-tuned classifiers (RUN/finetune/*/model)")]
    if dataset is None:
        return [missing("the run's dataset (the frames the maps are drawn on)")]
    resolved = layout.resolved_config
    settings = load_yaml(resolved).get("evaluation", {}) if resolved.is_file() else {}
    n_bootstrap = int(settings.get("n_bootstrap", 1000))
    galleries: list[Block] = []
    results: dict[str, dict[str, Any]] = {}
    regions: dict[int, dict[str, Any]] = {}  # per model input size
    for name in sorted(directories, key=_run_rank):
        predictions = read_predictions(directories[name] / PREDICTIONS)
        shown = gallery_rows(predictions)
        abnormal = predictions.loc[predictions["label"].astype(int) == 1, "image_id"].tolist()
        maps = init_maps(directories[name], dataset, list(dict.fromkeys([*shown["image_id"], *abnormal])))
        size = maps.frames.shape[-1]
        if size not in regions:
            regions[size] = kidney_regions(dataset, abnormal, size)
        if regions[size]:
            results[name] = pointing_game(maps, regions[size], n_bootstrap=n_bootstrap)
        galleries.append(text(f"{name}: most wrong test frames both ways, and true ones", "subheading"))
        galleries.append({"kind": "gallery",
                          "images": [_map_figure(maps, row) for row in shown.to_dict("records")]})
    blocks: list[Block] = []
    if results:
        blocks.append(text("Pointing game", "heading"))
        blocks.append(figure(pointing_game_png(results), "pointing game"))
        blocks.append(table(pd.DataFrame([{
            "init": name, "abnormal test frames": r["frames"], "patients": r.get("patients"),
            "map peak in the kidney (95% CI)": interval_cell(r.get("hit_rate"), r.get("ci_low"),
                                                             r.get("ci_high")),
            "chance": r.get("chance")} for name, r in results.items()])))
        blocks.append(text("The share of abnormal test kidney frames whose Grad-CAM peak falls inside the "
                           "kidney (within 1/16 of the frame's side), where the synthetic corpus drew it; "
                           "the interval resamples patients. Chance: the share of the frame that region "
                           "covers. The corpus's truth scores the maps only (evaluation/report_maps.py).",
                           "note"))
    else:
        blocks.append(text("No pointing game: the dataset is not a synthetic corpus, so the kidney's region "
                           "is unknown.", "note"))
    blocks.append(text("Test frames with their maps", "heading"))
    blocks.append(text("Grad-CAM of P(abnormal) over the preprocessed frame each classifier saw, scaled to "
                       "the frame's maximum (the colour bar); the false positives with the highest "
                       "P(abnormal), the false negatives with the lowest, and a seeded sample of correctly "
                       "called frames.", "note"))
    return blocks + galleries


def _map_figure(maps: InitMaps, row: dict[str, Any]) -> dict[str, Any]:
    index = int(maps.predictions.index[maps.predictions["image_id"] == row["image_id"]][0])
    heat = maps.maps[index]
    image = overlay_image(maps.frames[index], heat, 0.0, float(heat.max()))
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return figure(buffer.getvalue(), row["kind"]) | {
        "caption": f"{row['kind']}, P(abnormal) {float(row['prob_abnormal']):.2f}"}


def representation_section(layout: RunLayout) -> list[Block]:
    evaluation = layout.evaluation
    if not (evaluation / REPRESENTATION).exists():
        return [missing("representation quality (RUN/evaluation/representation.csv)")]
    blocks = [table(read_table(evaluation / REPRESENTATION)),
              text("Frozen encoder features of the kidney frames. Linear probe: logistic regression trained "
                   "on the train part, scored on test. kNN: cosine-distance vote. Silhouette: normal vs "
                   "abnormal on test (-1 to 1, higher means better separated).", "note")]
    if (evaluation / TSNE_PLOT).exists():
        blocks.append(figure(evaluation / TSNE_PLOT))
        blocks.append(text("t-SNE of the encoded test frames (scikit-learn defaults, as in the paper's "
                           "Fig. 4): purple normal kidneys, yellow abnormal kidneys.", "note"))
    return blocks


def retrieval_section(layout: RunLayout) -> list[Block]:
    result = read_json(layout.evaluation / RETRIEVAL)
    if not result:
        return [missing("retrieval and zero-shot (RUN/evaluation/retrieval.json)")]
    blocks = []
    if "retrieval" in result:
        r = result["retrieval"]
        recalls = pd.DataFrame({"direction": ["image to text", "text to image"]}).join(
            pd.DataFrame([r["image_to_text"], r["text_to_image"]]))
        blocks.append(table(recalls))
        blocks.append(text(f"Recall@k on held-out pairs ({r['n_images']} frames, {r['n_texts']} distinct "
                           "descriptions): the share of queries whose match is among the k nearest.", "note"))
    if "zero_shot" in result:
        blocks.append(text("Zero-shot normal/abnormal", "heading"))
        blocks += json_tables(result["zero_shot"])
        prompts = result.get("prompts", {})
        blocks.append(text("Prompts: " + "; ".join(f"{k}: " + ", ".join(f"\u00ab{p}\u00bb" for p in v)
                                                    for k, v in prompts.items()), "note"))
    return blocks


def label_efficiency_section(layout: RunLayout) -> list[Block]:
    evaluation = layout.evaluation
    if not (evaluation / LABEL_EFFICIENCY_TABLE).exists():
        return [missing("label efficiency (RUN/evaluation/label_efficiency.csv)")]
    blocks = [table(label_efficiency_display(read_table(evaluation / LABEL_EFFICIENCY_TABLE)))]
    if (evaluation / LABEL_EFFICIENCY_PLOT).exists():
        blocks.append(figure(evaluation / LABEL_EFFICIENCY_PLOT))
    return blocks


def label_efficiency_display(runs: pd.DataFrame) -> pd.DataFrame:
    """label_efficiency.csv with each macro-F1 and gain beside its interval in one cell; a table written
    before the intervals existed is shown as it is."""
    needed = {"macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "vs", "gain", "gain_ci_low", "gain_ci_high"}
    if not needed <= set(runs.columns):
        return runs

    reference = next((str(v) for v in runs["vs"].dropna() if str(v)), "random")
    scores = runs[["macro_f1", "macro_f1_ci_low", "macro_f1_ci_high"]].itertuples(index=False)
    gains = runs[["gain", "gain_ci_low", "gain_ci_high"]].itertuples(index=False)
    return pd.DataFrame({
        "init": runs["init"], "fraction": runs["fraction"], "n_train": runs["n_train"],
        "test macro-F1 (95% CI)": [interval_cell(*r) for r in scores],
        f"minus {reference} (paired 95% CI)": [interval_cell(*r, sign="+") for r in gains],
    })


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(pd.to_numeric, errors="coerce")
