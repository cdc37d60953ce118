"""The run report: every section from a populated run, "not run" from an empty one, and no PHI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tiny_kidneys import PARTS, SENTENCES, make_dataset, save_tiny_convirt
from typer.testing import CliRunner

from usconvirt.cli import app
from usconvirt.errors import InputError
from usconvirt.evaluation.report import json_tables, metrics_with_ci, report_data, write_report
from usconvirt.io import write_table
from usconvirt.pipeline_config import PipelineConfig
from usconvirt.run_layout import RunLayout
from usconvirt.stages import run_report

SECRET = "Madame Dupont, kyste secret"  # report / sentence text that must never reach the HTML


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 16), 128, np.uint8)).save(path)


def populated_run(root: Path) -> Path:
    """A run directory holding one small file of every kind the stages write."""
    run = root / "run"
    dataset, split = make_dataset(run / "dataset")
    exams = dataset.exams.assign(report=SECRET)
    exams.to_csv(run / "dataset" / "exams.csv", index=False)
    pretrain_exams = ["pre0", "pre1"]
    split = pd.concat([split, pd.DataFrame({"exam_id": pretrain_exams, "patient_id": ["q0", "q1"],
                                            "part": "pretrain"})])
    split.to_csv(run / "split.csv", index=False)
    (run / "cluster").mkdir()
    (run / "cluster" / "metrics.json").write_text(json.dumps({
        "frames": 40, "selected": 3, "cluster_sizes": [10, 30],
        "per_organ": {"kidney": {"precision": 0.8, "recall": 0.7, "f1": 0.7467, "support": 12},
                      "liver": {"precision": 0.5, "recall": 0.6, "f1": 0.5455, "support": 9}},
        "weighted_f1": 0.6675, "kidney_f1": 0.7467}))
    pd.DataFrame({"image_id": ["test0-normal", "test1-normal", "test2-normal"], "cluster": [1, 1, 1],
                  "confidence": [0.9] * 3, "organ": ["kidney"] * 3}).to_csv(run / "cluster" / "selected.csv",
                                                                              index=False)
    _png(run / "cluster" / "montages" / "cluster_0.png")
    pd.DataFrame({"exam_id": ["pre0", "pre0", "pre1", "train0"], "start": [0, 10, 0, 0], "end": [9, 20, 9, 9],
                  "text": [SECRET] * 4, "organ": ["kidney", "kidney", "liver", "kidney"], "cuis": [""] * 4,
                  "laterality": [""] * 4, "abnormal": [False] * 4}).to_parquet(run / "sentences.parquet")
    pd.DataFrame({"image_id": ["test0-normal", "test1-normal"], "exam_id": ["pre0", "pre0"], "side": ["", ""],
                  "texts": [[SECRET], [SECRET]]}).to_parquet(run / "pairs.parquet")
    (run / "pairs.json").write_text(json.dumps({"frames_selected": 3, "frames_kept": 2,
                                                "frames_without_text": 1, "exams": 1}))
    (run / "pretrain").mkdir()
    pd.DataFrame({"step": range(50), "epoch": [s // 10 for s in range(50)],
                  "loss": np.linspace(3.0, 1.0, 50)}).to_csv(run / "pretrain" / "loss.csv", index=False)
    evaluation = run / "evaluation"
    evaluation.mkdir()
    pd.DataFrame({"row": ["Normal Kidneys", "accuracy"], "precision/Baseline": [0.91, None],
                  "precision/ConVIRT": [0.92, None], "support": [427, 603]}).to_csv(evaluation / "table1.csv",
                                                                                  index=False)
    pd.DataFrame({"run": ["Baseline", "ConVIRT", "Baseline", "ConVIRT"],
                  "metric": ["ppv", "ppv", "macro_f1", "macro_f1"], "value": [0.49, 0.6, 0.68, 0.77],
                  "ci_low": [0.4, 0.52, 0.6, 0.7], "ci_high": [0.58, 0.68, 0.75, 0.83]}).to_csv(
        evaluation / "metrics.csv", index=False)
    pd.DataFrame({"init": ["random", "ConVIRT"], "probe_accuracy": [0.6, 0.8], "knn_accuracy": [0.55, 0.75],
                  "silhouette": [0.01, 0.2]}).to_csv(evaluation / "representation.csv", index=False)
    _png(evaluation / "tsne.png")
    (evaluation / "retrieval.json").write_text(json.dumps({
        "prompts": {"normal": ["rein normal"], "abnormal": ["kyste rénal"]},
        "retrieval": {"image_to_text": {"R@1": 0.25}, "text_to_image": {"R@1": 0.5},
                      "n_images": 4, "n_texts": 2},
        "zero_shot": {"accuracy": 0.75, "macro_f1": 0.7, "roc_auc": 0.8, "n_images": 4}}))
    pd.DataFrame({"init": ["random", "ConVIRT"], "fraction": [0.1, 0.1], "n_train": [2, 2],
                  "macro_f1": [0.4, 0.6], "accuracy": [0.5, 0.6], "n_test": [16, 16],
                  "macro_f1_ci_low": [0.3, 0.45], "macro_f1_ci_high": [0.5, 0.7], "vs": [None, "random"],
                  "gain": [None, 0.2], "gain_ci_low": [None, 0.05], "gain_ci_high": [None, 0.31]}).to_csv(
        evaluation / "label_efficiency.csv", index=False)
    _png(evaluation / "label_efficiency.png")
    return run


def test_report_of_a_populated_run_shows_every_section_without_report_text(tmp_path):
    run = populated_run(tmp_path)
    path = write_report(run)
    page = re.sub(r' class="text"', "", path.read_text(encoding="utf-8"))  # text cells are left-aligned

    assert path == run / "report.html"
    assert page.count("Not run") == 1 and "could not be read" not in page
    assert "Not run: fine-tuned classifiers" in page  # the fixture has no model to draw maps with
    n_exams = sum(PARTS.values())
    assert f"{n_exams} exams from {n_exams} patients, {2 * n_exams} frames" in page
    assert "<td>pretrain</td>" in page and "<td>train</td>" in page
    assert re.search(r"<td>image-text pairs</td>\s*<td>2</td>", page)
    assert re.search(r"<td>pre-training exams</td>\s*<td>2</td>", page)
    assert re.search(r"<td>exams whose report mentions the kidney</td>\s*<td>1</td>", page)  # pre0 only
    assert re.search(r"<td>kidney frames without text</td>\s*<td>1</td>", page)
    assert re.search(r"<th>kidney</th>|<td>kidney</td>", page) and "0.667" in page  # per-organ matrix
    assert "0.600 (0.520 to 0.680)" in page  # PPV with its bootstrap interval
    assert "<th>Baseline</th>" in page and "<th>ConVIRT</th>" in page  # Table 1's two-level header
    assert "\u00abrein normal\u00bb" in page
    assert "Baseline 0.680 (0.600 to 0.750); ConVIRT 0.770 (0.700 to 0.830)" in page  # key results
    assert "Zero-shot normal/abnormal ROC-AUC from French prompts: 0.800" in page
    assert "0.600 (0.450 to 0.700)" in page and "+0.200 (+0.050 to +0.310)" in page  # label efficiency
    assert "minus random (paired 95% CI)" in page
    assert page.count("<img ") == 4  # montage, loss curve, t-SNE, label efficiency
    assert SECRET not in page and "Dupont" not in page
    assert "test0-normal" not in page  # no image ids either
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_the_report_stage_reads_the_files_where_its_layout_puts_them(tmp_path):
    run = populated_run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "split.csv").rename(elsewhere / "parts.csv")
    (run / "cluster").rename(elsewhere / "clusters")
    for name in ("sentences", "pairs"):  # `usconvirt sentences/pair --out` may write CSV: read as such
        write_table(pd.read_parquet(run / f"{name}.parquet"), elsewhere / f"{name}.csv")
        (run / f"{name}.parquet").unlink()
    layout = RunLayout(run, split=elsewhere / "parts.csv", cluster=elsewhere / "clusters",
                       sentences=elsewhere / "sentences.csv", pairs=elsewhere / "pairs.csv",
                       report=elsewhere / "report.html")

    run_report(PipelineConfig(), layout)
    page = re.sub(r' class="text"', "", (elsewhere / "report.html").read_text(encoding="utf-8"))
    assert not (run / "report.html").exists()
    assert "<td>pretrain</td>" in page and "RUN/split.csv" not in page and "could not be read" not in page
    assert re.search(r"<td>frames clustered</td>\s*<td>40</td>", page) and "0.667" in page
    assert re.search(r"<td>image-text pairs</td>\s*<td>2</td>", page)
    assert re.search(r"<td>exams whose report mentions the kidney</td>\s*<td>1</td>", page)
    default = write_report(run).read_text(encoding="utf-8")  # the standard paths no longer hold them
    assert "Not run: split (RUN/split.csv)" in default and "Not run: clustering" in default


def test_report_of_an_empty_run_says_what_was_not_run(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    page = write_report(run, tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert page.count("Not run") == 10
    assert "RUN/pretrain/loss.csv" in page and "RUN/evaluation/retrieval.json" in page


def test_a_corrupt_input_spoils_only_its_own_section(tmp_path):
    run = populated_run(tmp_path)
    (run / "cluster" / "metrics.json").write_text("{not json")
    page = write_report(run).read_text(encoding="utf-8")
    assert page.count("could not be read") == 2  # the counts table and the clustering section
    assert "invalid JSON" in page
    assert page.count("<img ") == 3  # the montage went with its section; the other figures stay
    assert "0.600 (0.520 to 0.680)" in page


def test_json_tables_renders_flat_values_and_nested_matrices():
    blocks = json_tables({"a": 1, "b": {"c": 0.12345, "d": [1, 2]},
                          "per": {"x": {"f1": 0.5}, "y": {"f1": 0.25}}})
    flat, heading, matrix = blocks
    assert flat["rows"] == [["a", "1"], ["b / c", "0.123"], ["b / d", "1, 2"]]
    assert heading == {"kind": "subheading", "text": "per"}
    assert matrix["columns"] == ["per", "f1"] and matrix["rows"] == [["x", "0.500"], ["y", "0.250"]]


def test_metrics_with_ci_keeps_metric_and_run_order():
    long = pd.DataFrame({"run": ["B", "B", "A"], "metric": ["ppv", "npv", "ppv"], "value": [0.5, 0.9, 0.4],
                         "ci_low": [0.4, None, 0.3], "ci_high": [0.6, None, 0.5]})
    table = metrics_with_ci(long)
    assert table.columns.tolist() == ["metric", "B", "A"]
    assert table["B"].tolist() == ["0.500 (0.400 to 0.600)", "0.900"]
    assert table["A"].tolist() == ["0.400 (0.300 to 0.500)", "n/a"]


def test_cli_report_writes_the_file_and_rejects_a_missing_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    assert (run / "report.html").exists()
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert isinstance(missing.exception, InputError)  # main() prints it as one line and exits 2
    assert "run directory does not exist" in str(missing.exception)


def test_cli_report_measure_compares_random_and_convirt_then_reports(tmp_path):
    run = tmp_path / "run"
    dataset, split = make_dataset(run / "dataset")
    split.to_csv(run / "split.csv", index=False)
    test_exams = split.loc[split["part"] == "test", "exam_id"]
    pd.DataFrame({"exam_id": test_exams, "organ": "kidney",
                  "text": [SENTENCES["normal" if i % 2 else "abnormal"][0] for i in range(len(test_exams))]}
                 ).to_parquet(run / "sentences.parquet")
    save_tiny_convirt(run / "pretrain", [t for texts in SENTENCES.values() for t in texts])

    result = CliRunner().invoke(app, ["report", str(run), "--measure"])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(run / "evaluation" / "representation.csv")["init"].tolist() == ["random", "ConVIRT"]
    retrieval = json.loads((run / "evaluation" / "retrieval.json").read_text(encoding="utf-8"))
    assert retrieval["retrieval"]["n_images"] == 2 * PARTS["test"]
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Not run: representation" not in page and "Not run: retrieval" not in page


def _add_controls_and_diagnostics(run: Path) -> None:
    """The files the diagnostics, control and collapse checks write, beside a populated run."""
    for name, ratio, warning in (("pretrain", 0.85, False), ("pretrain_simclr", 0.97, True)):
        directory = run / name
        directory.mkdir(exist_ok=True)
        pd.DataFrame({"step": range(20), "epoch": [s // 10 for s in range(20)],
                      "loss": np.linspace(3.4, 3.0, 20)}).to_csv(directory / "loss.csv", index=False)
        pd.DataFrame({"epoch": [0, 1], "mean_loss": [3.3, 3.0], "chance": [3.466, 3.466]}).to_csv(
            directory / "epoch_loss.csv", index=False)
        retrieval = {"r@1": 0.125, "r@5": 0.5, "r@10": 0.75, "n": 16} if name == "pretrain" else None
        (directory / "diagnostics.json").write_text(json.dumps({
            "last_epoch_mean_loss": 3.0, "chance": 3.466, "ratio": ratio, "warning": warning,
            "heldout_retrieval": retrieval}))
    for init, pred, collapsed in (("random", 0.98, True), ("convirt", 0.31, False), ("shuffled", 0.2, False)):
        (run / "finetune" / init).mkdir(parents=True)
        part = {"macro_f1": 0.3 if collapsed else 0.7, "pred_abnormal_share": pred,
                "true_abnormal_share": 0.29, "collapsed": collapsed}
        (run / "finetune" / init / "metrics.json").write_text(json.dumps({
            "best_epoch": 3, "frames": {"train": 40}, "val": part, "test": part,
            "warnings": ["predicts abnormal for 98% of validation frames"] if collapsed else []}))
    metrics = json.loads((run / "cluster" / "metrics.json").read_text())
    metrics |= {"method": "kmeans", "mapping_source": "labelled train frames",
                "mapping": {"1": "kidney", "0": "liver"},  # frames per cluster: cluster_sizes [10, 30]
                "baselines": {"kmeans": {"weighted_f1": 0.93, "kidney_f1": 0.9},
                              "deep": {"weighted_f1": 0.62, "kidney_f1": 0.69}},
                "warnings": ["<b>only 4% of frames</b> in kidney clusters"]}
    (run / "cluster" / "metrics.json").write_text(json.dumps(metrics))


def test_report_shows_diagnostics_controls_collapse_and_cluster_baselines(tmp_path):
    run = populated_run(tmp_path)
    _add_controls_and_diagnostics(run)
    data = report_data(run)
    sections = {s["title"]: s["blocks"] for s in data["sections"]}

    pretrain = [b for b in sections["Pre-training"] if b["kind"] == "table"][0]
    assert [row[0] for row in pretrain["rows"]] == ["ConVIRT", "simclr"]
    assert pretrain["marks"] == [False, True]
    row = dict(zip(pretrain["columns"], pretrain["rows"][0], strict=True))
    assert row["first-epoch mean loss"] == "3.300" and row["last / chance"] == "0.850"
    assert row["held-out R@1"] == "0.125" and row["held-out pairs"] == "16"

    runs = [b for b in sections["Fine-tuning: Table 1"] if b["kind"] == "table"][-1]
    shown = [dict(zip(runs["columns"], r, strict=True)) for r in runs["rows"]]
    assert [r["run"] for r in shown] == ["random", "convirt", "shuffled"]  # baseline, method, control
    assert runs["marks"] == [True, False, False]
    assert shown[0]["val predicted abnormal"] == "98.0%" and shown[0]["val true abnormal"] == "29.0%"
    assert shown[0]["collapsed"].endswith("collapsed (val, test)") and shown[1]["collapsed"] == "no"
    finetune_warnings = [b for b in sections["Fine-tuning: Table 1"] if b["kind"] == "warnings"][0]
    assert finetune_warnings["items"] == ["random: predicts abnormal for 98% of validation frames"]
    summary_warnings = [b for b in sections["Key results"] if b["kind"] == "warnings"][0]["items"]
    assert any("random predicts one class" in w for w in summary_warnings)
    assert any("simclr learned little" in w for w in summary_warnings)

    cluster = sections["Organ clustering"]
    assert cluster[0] == {"kind": "warnings", "items": ["<b>only 4% of frames</b> in kidney clusters"]}
    summary = "Method kmeans on 40 pre-training frames; 3 frames kept as kidney; clusters named from the "
    assert any(b.get("text", "").startswith(summary + "labelled train frames.") for b in cluster)
    assert not any("global_step" in str(b) or "per_organ" in str(b) for b in cluster)  # no key-value dump
    tables = [b for b in cluster if b["kind"] == "table"]
    baselines = next(t for t in tables if t["columns"][0] == "method")
    assert baselines["rows"] == [["kmeans", "0.930", "0.900", "yes"], ["deep", "0.620", "0.690", ""]]
    organs = next(t for t in tables if t["columns"][:2] == ["organ", "clusters"])
    assert organs["columns"][2:] == ["frames in its clusters", "precision", "recall", "F1",
                                     "annotated frames"]
    assert organs["rows"] == [["kidney", "1", "30", "0.800", "0.700", "0.747", "12"],
                              ["liver", "0", "10", "0.500", "0.600", "0.545", "9"]]
    montages = next(b for b in cluster if b["kind"] == "gallery")
    assert [image["caption"] for image in montages["images"]] == ["cluster 0: liver, 10 frames"]

    page = write_report(run).read_text(encoding="utf-8")
    assert "&lt;b&gt;only 4% of frames&lt;/b&gt;" in page and "<b>only" not in page  # autoescaped
    assert page.count('class="flagged"') == 2  # simclr's pre-training, random's fine-tuning
    assert page.count("<img ") == 5  # + the loss-per-epoch figure
    assert SECRET not in page


def test_measure_run_compares_every_pretraining_run(tmp_path):
    from usconvirt.evaluation.represent import run_encoders

    (tmp_path / "pretrain" / "image_encoder").mkdir(parents=True)
    (tmp_path / "pretrain_shuffled" / "image_encoder").mkdir(parents=True)
    (tmp_path / "pretrain_simclr").mkdir()  # no encoder yet: not compared
    assert run_encoders(RunLayout(tmp_path), imagenet=True) == {
        "random": "random", "ImageNet": "imagenet", "ConVIRT": f"convirt:{tmp_path / 'pretrain'}",
        "shuffled": f"convirt:{tmp_path / 'pretrain_shuffled'}"}


def test_cluster_section_shows_the_candidates_and_why_one_was_chosen(tmp_path):
    from usconvirt.evaluation.report import clustering_section

    layout = RunLayout(tmp_path)
    layout.cluster.mkdir(parents=True)
    metrics = {"method": "deep", "frames": 40, "candidate": "texture:6",
               "selection": {"chosen": "texture:6", "baseline": "pca32:12", "labels": "organ labels",
                             "why": "best cross-validated score over 3 candidates"},
               "baselines": {"pca32:12": {"chosen": "", "selection_score": 0.6},
                             "texture:6": {"chosen": "yes", "selection_score": 0.7},
                             "deep": {"chosen": "", "selection_score": 0.5}}}
    (layout.cluster / "metrics.json").write_text(json.dumps(metrics))
    blocks = clustering_section(layout)
    candidates = next(b for b in blocks if b["kind"] == "table" and b["columns"][0] == "method")
    assert candidates["columns"] == ["method", "chosen", "selection_score"]  # no 'deep' marked as used
    assert [r[1] for r in candidates["rows"]] == ["", "yes", ""]
    why = "Chosen: texture:6: best cross-validated score over 3 candidates."
    assert {"kind": "note", "text": why} in blocks
