"""Every stage subcommand given a pipeline config reads the settings `usconvirt run` would use."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from usconvirt import stages
from usconvirt.cli import app
from usconvirt.config import load_yaml, save_yaml
from usconvirt.pipeline_config import validate_pipeline_config

DEMO = Path(__file__).parents[2] / "configs" / "demo.yaml"


def _commands(tmp: Path) -> list[tuple[str, str, list[str]]]:
    """(stage function, config section, command line) of each stage subcommand that takes --config."""
    (tmp / "exams.csv").write_text("exam_id,report\ne1,Reins normaux.\n", encoding="utf-8")
    (tmp / "evaluation").mkdir(exist_ok=True)
    (tmp / "evaluation" / "table1.md").write_text("table\n", encoding="utf-8")
    return [
        ("run_sentences", "sentences",
         ["sentences", str(tmp / "exams.csv"), "--out", str(tmp / "s.parquet")]),
        ("run_cluster", "cluster", ["cluster", str(tmp), "--out", str(tmp / "cluster")]),
        ("run_tokenizer", "tokenizer", ["tokenizer", "--dataset", str(tmp), "--out", str(tmp / "tok")]),
        ("run_pretrain", "pretrain", ["pretrain", "--pairs", str(tmp / "p.parquet"), "--dataset", str(tmp),
                                      "--out", str(tmp / "pretrain")]),
        ("run_finetune", "finetune", ["finetune", "--dataset", str(tmp), "--split", str(tmp / "split.csv"),
                                      "--out", str(tmp / "finetune" / "random")]),
        ("run_evaluate", "evaluation", ["evaluate", "--run", f"a={tmp}", "--out", str(tmp / "evaluation")]),
    ]


@pytest.mark.parametrize("index", range(6))
def test_stage_command_reads_the_run_settings(index: int, tmp_path: Path, monkeypatch) -> None:
    function, section, argv = _commands(tmp_path)[index]
    seen = {}

    def stage(settings, layout, **options):
        seen["settings"] = settings
        return "ok"

    monkeypatch.setattr(stages, function, stage)
    result = CliRunner().invoke(app, [*argv, "--config", str(DEMO)])
    assert result.exit_code == 0, result.output
    expected = validate_pipeline_config(load_yaml(DEMO), source=str(DEMO))
    assert getattr(seen["settings"], section) == getattr(expected, section)


def test_finetune_takes_pretraining_arch_and_size_and_flags_still_win(tmp_path: Path, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(stages, "run_finetune", lambda settings, layout, **_: seen.append(settings) or "ok")
    argv = ["finetune", "--dataset", str(tmp_path), "--split", str(tmp_path / "split.csv"),
            "--out", str(tmp_path / "finetune" / "random"), "--config", str(DEMO)]
    assert CliRunner().invoke(app, argv).exit_code == 0
    assert (seen[0].finetune.arch, seen[0].finetune.image_size) == ("tiny", 64)  # demo's pretrain section
    assert CliRunner().invoke(app, [*argv, "--arch", "small", "--image-size", "32"]).exit_code == 0
    assert (seen[1].finetune.arch, seen[1].finetune.image_size) == ("small", 32)
    save_yaml({"epochs": 3}, tmp_path / "flat.yaml")  # a file of the section's keys alone: its dataclass
    argv[-1] = str(tmp_path / "flat.yaml")
    assert CliRunner().invoke(app, argv).exit_code == 0
    assert seen[2].finetune.epochs == 3 and seen[2].finetune.arch == "resnet50"
