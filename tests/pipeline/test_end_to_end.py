"""`usconvirt run` end to end on a tiny synthetic corpus: every stage, the report, skip and resume."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from usconvirt import stages
from usconvirt.io import find_table

CPU = {"accelerator": "cpu", "devices": "1", "progress_bar": False}
TINY = {
    "synth": {"exams": 36, "seed": 11, "image_size": 64, "prevalences": {"kidney_abnormal": 0.5}},
    "split": {"labeled_fraction": 0.6, "train": 0.5, "val": 0.2, "test": 0.3, "seed": 0},
    "cluster": {"clusters": 8, "epochs": 1, "image_size": 32, "batch_size": 64, "encoder": {"arch": "tiny"},
                "select": "kidney", "trainer": CPU},
    "sentences": {"organ": "kidney"},
    "pairing": {"organ": "kidney"},
    "tokenizer": {"vocab_size": 300, "min_frequency": 1},
    "pretrain": {"image": {"arch": "tiny"},
                 "text": {"name": "tiny", "pooling": "mean", "freeze_layers": 0, "max_length": 32},
                 "image_size": 32, "proj_dim": 16, "batch_size": 8, "epochs": 1, "num_workers": 0,
                 "schedule": "constant", "trainer": CPU},
    "finetune_inits": ["random", "convirt", "imagenet", "report_labels"],
    "finetune": {"epochs": 1, "patience": 1, "batch_size": 16, "trainer": CPU},
    "evaluation": {"n_bootstrap": 20},
    "label_efficiency": {"enabled": False},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    lines: list[str] = []
    stages.run(TINY, out=out, echo=lines.append)
    return out, lines


def test_every_stage_runs_and_the_report_is_written(run_dir):
    out, lines = run_dir
    assert (out / "report.html").exists()
    assert (out / "evaluation" / "table1.md").exists()
    assert (out / "config.resolved.yaml").exists()
    assert any(line.startswith("[1/") and "synth" in line and "done" in line for line in lines)
    # ImageNet weights cannot load offline: that init is left out, not a failure.
    assert {p.name for p in (out / "finetune").iterdir()} == {"random", "convirt", "report_labels"}


def test_the_report_label_control_is_trained_and_shown_beside_convirt(run_dir):
    out, _ = run_dir
    assert (out / "weak_labels.parquet").exists()
    assert (out / "pretrain_report_labels" / "image_encoder").is_dir()
    assert "f1-score/report_labels" in pd.read_csv(out / "evaluation" / "table1.csv").columns
    assert "report_labels" in set(pd.read_csv(out / "evaluation" / "representation.csv")["init"])
    assert "report_labels" in (out / "report.html").read_text()


def test_a_second_run_skips_every_stage_without_building_a_model(run_dir, monkeypatch):
    out, _ = run_dir

    def no_model(*args, **kwargs):
        raise AssertionError("an up-to-date run built or loaded a model")

    from transformers import CamembertModel, ResNetModel

    for cls in (ResNetModel, CamembertModel):
        monkeypatch.setattr(cls, "from_pretrained", no_model)
        monkeypatch.setattr(cls, "__init__", no_model)
    lines: list[str] = []
    stages.run(TINY, out=out, echo=lines.append)
    assert all("skipped" in line or "disabled" in line for line in lines), lines


def test_the_imagenet_decision_is_made_offline_once_and_recorded(run_dir):
    out, _ = run_dir
    assert json.loads((out / "manifest.json").read_text())["decisions"] == {"imagenet": False}


def test_after_a_kill_the_rerun_resumes_without_redoing_finished_stages(run_dir, monkeypatch):
    out, _ = run_dir
    calls: list[str] = []

    def killed(config, layout):
        raise KeyboardInterrupt

    for stage in stages.STAGES:
        if stage.name == "evaluate":
            monkeypatch.setattr(stage, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        stages.run(TINY, out=out, from_stage="finetune", echo=calls.append)
    monkeypatch.undo()
    lines: list[str] = []
    stages.run(TINY, out=out, echo=lines.append)
    status = {line.split()[1]: line for line in lines}
    assert "skipped" in status["pretrain"] and "skipped" in status["finetune"]
    assert "done" in status["evaluate"] and "done" in status["report"]


def test_run_writes_the_per_kidney_rows(run_dir):
    out, _ = run_dir
    runs = json.loads((out / "evaluation" / "metrics.json").read_text())["runs"]
    assert runs and all(run["exam_level"]["kidney"]["units"] > 0 for run in runs.values()), runs


def test_the_stage_commands_write_the_same_tables_as_run(run_dir, tmp_path, cli):
    """Each stage subcommand, given the run's resolved config, writes what `usconvirt run` wrote."""
    run, _ = run_dir
    resolved, cmd = run / "config.resolved.yaml", tmp_path
    steps = [
        ("synth", cmd / "dataset", "--config", resolved),
        ("split", cmd / "dataset", "--out", cmd / "split.csv", "--labeled-fraction", "0.6", "--train", "0.5",
         "--val", "0.2", "--test", "0.3", "--seed", "0"),
        ("cluster", cmd / "dataset", "--out", cmd / "cluster", "--split", cmd / "split.csv",
         "--config", resolved),
        ("sentences", cmd / "dataset" / find_table(run / "dataset", "exams").name,
         "--out", cmd / "sentences.parquet", "--config", resolved),
        ("pair", cmd / "dataset", "--frames", cmd / "cluster" / "selected.csv", "--sentences",
         cmd / "sentences.parquet", "--out", cmd / "pairs.parquet"),
        ("weak-labels", cmd / "sentences.parquet", "--split", cmd / "split.csv", "--out",
         cmd / "weak_labels.parquet"),
        ("tokenizer", "--dataset", cmd / "dataset", "--split", cmd / "split.csv", "--out", cmd / "tokenizer",
         "--config", resolved),
        # WordPiece training breaks ties differently in each process (Hugging Face tokenizers), so
        # pre-training reads the run's own tokenizer: the rest must then match to the float
        ("pretrain", "--pairs", cmd / "pairs.parquet", "--dataset", cmd / "dataset", "--tokenizer",
         run / "tokenizer", "--out", cmd / "pretrain", "--config", resolved),
        *(("finetune", "--dataset", cmd / "dataset", "--split", cmd / "split.csv", "--init", init,
           "--out", cmd / "finetune" / name, "--config", resolved)
          for name, init in (("random", "random"), ("convirt", f"convirt:{cmd / 'pretrain'}"))),
        # the report-label control has no stage command of its own: the run's is evaluated beside
        ("evaluate", "--run", f"random={cmd / 'finetune' / 'random'}", "--run",
         f"convirt={cmd / 'finetune' / 'convirt'}", "--run",
         f"report_labels={run / 'finetune' / 'report_labels'}", "--out", cmd / "evaluation", "--dataset",
         cmd / "dataset", "--config", resolved),
    ]
    for args in steps:
        code, text = cli(*args)
        assert code == 0, (args[0], text)
    tables = ["dataset/exams.csv", "dataset/images.csv", "split.csv", "cluster/assignments.csv",
              "cluster/selected.csv", "sentences.parquet", "sentences_summary.parquet", "pairs.parquet",
              "weak_labels.parquet",
              "pretrain/loss.csv", "finetune/random/predictions.csv", "finetune/convirt/predictions.csv",
              "evaluation/table1.csv", "evaluation/metrics.csv"]
    for name in tables:
        ours, theirs = run / name, cmd / name
        assert ours.exists() and theirs.exists(), name
        read = pd.read_parquet if name.endswith(".parquet") else pd.read_csv
        pd.testing.assert_frame_equal(read(ours), read(theirs), obj=name)
    vocab = [json.loads((d / "tokenizer/tokenizer.json").read_text())["model"]["vocab"] for d in (run, cmd)]
    assert len(vocab[0]) == len(vocab[1])
    assert (json.loads((run / "evaluation" / "metrics.json").read_text())
            == json.loads((cmd / "evaluation" / "metrics.json").read_text()))
