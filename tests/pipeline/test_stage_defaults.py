"""Every stage subcommand given a pipeline config reads the settings `usconvirt run` would use."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from usconvirt import stages
from usconvirt.cli import app
from usconvirt.config import load_yaml, save_yaml
from usconvirt.errors import InputError
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


@pytest.mark.parametrize(("argv", "flag"), [
    (["sentences", "exams.csv", "--out", "s.csv", "--organ", "liverr"], "--organ"),
    (["sentences", "exams.csv", "--out", "s.csv", "--backend", "spacy", "--config", str(DEMO)], "--backend"),
    (["cluster", ".", "--out", "cluster", "--select", "kidnye"], "--select"),
    (["synth", "corpus", "--scanners", "many"], "--scanners"),
    (["finetune", "--dataset", ".", "--split", "s.csv", "--out", "f/r", "--loss", "l2",
      "--config", str(DEMO)], "--loss"),
    (["cluster", ".", "--out", "cluster", "--arch", "resnet101"], "--arch"),
    (["pair", ".", "--frames", "f.csv", "--sentences", "s.parquet", "--out", "p.parquet",
      "--organ", "kidnee"], "--organ"),
    (["weak-labels", "s.parquet", "--out", "w.parquet", "--organ", "kidnee"], "--organ"),
    (["evaluate", "--run", "a=p.csv", "--out", "e", "--bootstrap", "0"], "--bootstrap: expected at least 1"),
    (["synth", "corpus", "--kidney-abnormal", "1.5"], "--kidney-abnormal: expected a value in [0, 1]"),
    (["pretrain", "--pairs", "p.parquet", "--dataset", ".", "--out", "pretrain", "--batch-size", "0",
      "--config", str(DEMO)], "--batch-size: expected at least 1"),
])
def test_a_bad_flag_value_is_named_by_the_flag_not_the_config_key_or_file(argv, flag, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, argv)
    assert isinstance(result.exception, InputError), result.output
    expected = flag if ": " in flag else f"{flag}: expected one of"
    assert str(result.exception).startswith(expected), result.exception
    assert list(tmp_path.iterdir()) == []


def test_every_flag_that_sets_a_config_field_is_spelt_as_its_errors_name_it():
    import dataclasses

    import typer

    from usconvirt.cli import _flag
    from usconvirt.clustering.config import ClusterConfig
    from usconvirt.data.config import SplitConfig
    from usconvirt.evaluation.config import EvaluationConfig
    from usconvirt.synth.config import SynthConfig
    from usconvirt.text.config import SentenceConfig, TokenizerConfig
    from usconvirt.training.config import FinetuneConfig, PretrainConfig

    fields = {f.name for cls in (SplitConfig, SynthConfig, SentenceConfig, ClusterConfig, TokenizerConfig,
                                 PretrainConfig, FinetuneConfig, EvaluationConfig)
              for f in dataclasses.fields(cls)}
    group = typer.main.get_command(app)
    checked = {(name, p.name): p.opts for name, command in group.commands.items() for p in command.params
               if p.name in fields and p.param_type_name == "option"}
    assert ("evaluate", "n_bootstrap") in checked and ("sentences", "semantic_types") in checked
    assert {key: _flag(key[1]) for key in checked} == {key: opts[0] for key, opts in checked.items()}
