"""A pipeline config is validated whole before any stage runs: unknown keys, wrong types, bad values."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from usconvirt import stages
from usconvirt.config import load_yaml
from usconvirt.errors import InputError
from usconvirt.pipeline_config import packaged_config, validate_pipeline_config

CONFIGS = {name: load_yaml(packaged_config(name)) for name in ("demo", "paper")}
PLACES = [(name, section) for name, config in CONFIGS.items()
          for section in [None, *(k for k, v in config.items() if isinstance(v, dict))]]


def misspelt(name: str, section: str | None) -> dict:
    config = copy.deepcopy(CONFIGS[name])
    (config if section is None else config[section])["colour_jitterr"] = 1
    return config


@pytest.mark.parametrize(("name", "section"), PLACES, ids=[f"{n}-{s or 'top'}" for n, s in PLACES])
def test_a_misspelt_key_in_any_section_is_refused(name, section):
    with pytest.raises(InputError, match="colour_jitterr") as err:
        validate_pipeline_config(misspelt(name, section))
    assert f"config.{section}:" in str(err.value) if section else "config: unknown key" in str(err.value)


def test_the_pipeline_refuses_a_bad_config_before_writing_anything(tmp_path, monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(stages, "STAGES", [])  # nothing may run even if validation let it through
    for stage in ("synth", "label_efficiency"):
        with pytest.raises(InputError, match="colour_jitterr"):
            stages.run(misspelt("demo", stage), out=tmp_path / "run", echo=ran.append)
    assert not (tmp_path / "run").exists() and ran == []


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("finetune", "epochs", "eight", "finetune.epochs: expected an integer"),
    ("pretrain", "lr", "fast", "pretrain.lr: expected a number"),
    ("cluster", "select", "kidnye", "cluster.select: expected one of"),
    ("sentences", "backend", "spacy", "sentences.backend: expected one of"),
    ("label_efficiency", "enabled", "yes please", "label_efficiency.enabled: expected true or false"),
])
def test_a_wrong_type_or_value_names_section_key_and_expectation(section, key, value, expected):
    config = copy.deepcopy(CONFIGS["demo"])
    config[section][key] = value
    with pytest.raises(InputError, match=expected.replace(".", r"\.")):
        validate_pipeline_config(config)


def test_unknown_initialisation_is_refused():
    config = {**copy.deepcopy(CONFIGS["demo"]), "finetune_inits": ["random", "imagnet"]}
    with pytest.raises(InputError, match="finetune_inits.*imagnet"):
        validate_pipeline_config(config)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_shipped_configs_validate_to_their_own_settings(name):
    typed = validate_pipeline_config(CONFIGS[name])
    written = CONFIGS[name]["pretrain"]
    assert typed.pretrain.image.arch == written["image"]["arch"]
    assert typed.pretrain.image_size == written["image_size"] and typed.pretrain.lr == written["lr"]
    assert typed.finetune_inits == tuple(CONFIGS[name]["finetune_inits"])


def test_finetune_takes_the_pretraining_arch_and_size_unless_it_sets_its_own():
    derived = validate_pipeline_config({"pretrain": {"image": {"arch": "tiny"}, "image_size": 32}})
    assert (derived.finetune.arch, derived.finetune.image_size) == ("tiny", 32)
    own = validate_pipeline_config({"pretrain": {"image": {"arch": "tiny"}}, "finetune": {"arch": "small"}})
    assert own.finetune.arch == "small"


def test_the_manifest_hashes_the_typed_sections(tmp_path):
    from usconvirt.pipeline import stage_key
    from usconvirt.run_layout import RunLayout

    def key(config: dict) -> str:
        return stage_key(validate_pipeline_config(config), RunLayout(tmp_path), stages.FINETUNE)["config"]

    # YAML `1` and `1.0` are the same learning rate; a pre-training arch changes the arch fine-tuned
    assert key({"finetune": {"lr": 1}}) == key({"finetune": {"lr": 1.0}})
    assert key({}) != key({"pretrain": {"image": {"arch": "tiny"}}})


def test_the_cli_exits_2_with_one_line_naming_file_section_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = packaged_config("demo").read_text().replace("\nfinetune:\n", "\nfinetune:\n  epochz: 3\n", 1)
    assert "epochz" in text
    bad.write_text(text)
    command = [sys.executable, "-m", "usconvirt", "run", str(bad), "--out", str(tmp_path / "r")]
    result = subprocess.run(command, capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.yaml" in lines[0] and "epochz" in lines[0], result.stderr
    assert "finetune" in lines[0], result.stderr
    assert not (tmp_path / "r").exists()


def test_the_report_label_initialisation_and_weight_are_accepted():
    config = {**copy.deepcopy(CONFIGS["demo"]), "finetune_inits": ["random", "convirt", "report_labels"]}
    config["pretrain"] = {**config["pretrain"], "report_label_weight": 0.5}
    typed = validate_pipeline_config(config)
    assert typed.finetune_inits == ("random", "convirt", "report_labels")
    assert typed.pretrain.report_label_weight == 0.5


@pytest.mark.parametrize("installed", [False, True])
def test_an_mlflow_logger_without_mlflow_is_refused_before_any_stage(monkeypatch, installed):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "mlflow" and installed else
                        None if name == "mlflow" else real_find_spec(name, *a))
    config = {"finetune": {"trainer": {"logger": "mlflow"}}}
    if installed:
        assert validate_pipeline_config(config).finetune.trainer.logger == "mlflow"
        return
    with pytest.raises(InputError, match=r"my.yaml.finetune.trainer.logger: needs the mlflow package"):
        validate_pipeline_config(config, source="my.yaml")
