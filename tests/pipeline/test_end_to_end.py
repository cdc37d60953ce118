"""`usconvirt run` end to end on a tiny synthetic corpus: every stage, the report, skip and resume."""

from __future__ import annotations

import pytest

from usconvirt import stages

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
    "finetune_inits": ["random", "convirt", "imagenet"],
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
    assert {p.name for p in (out / "finetune").iterdir()} == {"random", "convirt"}


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
    import json

    out, _ = run_dir
    assert json.loads((out / "manifest.json").read_text())["decisions"] == {"imagenet": False}


def test_after_a_kill_the_rerun_resumes_without_redoing_finished_stages(run_dir, monkeypatch):
    out, _ = run_dir
    calls: list[str] = []

    def killed(ctx):
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
