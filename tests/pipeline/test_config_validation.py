"""A pipeline config is validated whole before any stage runs: unknown keys, wrong types, bad values."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from usconvirt import stages
from usconvirt.config import load_yaml, save_yaml
from usconvirt.errors import InputError
from usconvirt.pipeline_config import packaged_config, validate_pipeline_config, validate_run_config

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
    ("cluster", "features", "texure", "cluster.features: expected one of"),
    ("cluster", "candidates", ["pca32:12", "texure:48"], "cluster.candidates: candidate 'texure:48'"),
    ("label_efficiency", "enabled", "yes please", "label_efficiency.enabled: expected true or false"),
])
def test_a_wrong_type_or_value_names_section_key_and_expectation(section, key, value, expected):
    config = copy.deepcopy(CONFIGS["demo"])
    config[section][key] = value
    with pytest.raises(InputError, match=expected.replace(".", r"\.")):
        validate_pipeline_config(config)


def test_a_choice_in_a_nested_section_is_checked():
    config = copy.deepcopy(CONFIGS["demo"])
    config["pretrain"]["text"]["pooling"] = "avg"
    with pytest.raises(InputError, match=r"pretrain\.text\.pooling: expected one of"):
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


def test_the_quickumls_backend_without_its_extra_is_refused_before_any_stage(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "quickumls" else real_find_spec(name, *a))
    with pytest.raises(InputError, match=r"^my.yaml.sentences.backend: needs the \[umls\] extra"):
        validate_pipeline_config({"sentences": {"backend": "quickumls"}}, source="my.yaml")
    assert validate_pipeline_config({"sentences": {"backend": "eds"}}).sentences.backend == "eds"


INPUTS = [("dataset", "own_data", "directory"), ("split.file", "team_split.csv", "file"),
          ("cluster_mapping", "mapping.yaml", "file"), ("sentences.umls_dir", "umls", "directory"),
          ("pretrain.image.weights", "./encoder", "directory")]


@pytest.mark.parametrize(("key", "value", "kind"), INPUTS, ids=[i[0] for i in INPUTS])
def test_a_missing_input_path_stops_the_run_before_anything_is_written(key, value, kind, tmp_path,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stages, "STAGES", [])
    config = value
    for name in reversed(key.split(".")):
        config = {name: config}
    path = tmp_path / value.removeprefix("./")
    with pytest.raises(InputError) as err:
        stages.run(config, out=tmp_path / "run", source="my.yaml")
    assert str(err.value) == f"my.yaml.{key}: no such {kind} '{value}' (looked for {path})"
    assert not (tmp_path / "run").exists()
    path.mkdir() if kind == "directory" else path.write_text("x")
    if key == "sentences.umls_dir":  # a directory is not enough: it must hold a release's RRF files
        with pytest.raises(InputError, match=r"^my.yaml.sentences.umls_dir: no MRCONSO.RRF .* in 'umls'$"):
            validate_run_config(config, source="my.yaml")
        (path / "META").mkdir()
        for name in ("MRCONSO.RRF", "MRSTY.RRF"):
            (path / "META" / name).write_text("")
    validate_run_config(config, source="my.yaml")  # relative to the working directory, as the stages read it


def test_a_hub_id_is_not_looked_for_on_disk_but_a_path_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hub = {"pretrain": {"image": {"weights": "microsoft/resnet-50"}, "text": {"name": "camembert-base"}}}
    assert validate_run_config(hub).pretrain.image.weights == "microsoft/resnet-50"
    with pytest.raises(InputError, match=r"config\.pretrain\.text\.name: no such directory '/nowhere/bert'$"):
        validate_run_config({"pretrain": {"text": {"name": "/nowhere/bert"}}})


def test_run_check_refuses_a_missing_split_file_and_accepts_it_once_written(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("split: {file: team_split.csv}\n")
    command = [sys.executable, "-m", "usconvirt", "run", str(config), "--check"]
    missing = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 1, missing.stderr
    looked_for = tmp_path / "team_split.csv"
    assert f"c.yaml.split.file: no such file 'team_split.csv' (looked for {looked_for})" in lines[0]
    assert list(tmp_path.iterdir()) == [config]
    (tmp_path / "team_split.csv").write_text("exam_id,part\n")
    assert subprocess.run(command, capture_output=True, cwd=tmp_path).returncode == 0


# One field a section (and the nested trainer, augmentation and encoder): a value just out of its range, and
# the edge value that is still in it.
RANGES = [
    ("split.labeled_fraction", 0, 1), ("split.test", -0.1, 0), ("synth.exams", 0, 1),
    ("synth.prevalences.kidney_abnormal", 1.5, 1), ("cluster.clusters", 1, 2),
    ("cluster.map_fraction", -0.1, 0), ("sentences.threshold", 1.1, 1), ("tokenizer.vocab_size", 0, 1),
    ("pretrain.tau", 0, 1e-6), ("pretrain.lr", -1e-4, 0), ("pretrain.heldout_fraction", 1, 0.99),
    ("pretrain.contrastive_group", 1, 2), ("pretrain.trainer.max_steps", -2, -1),
    ("pretrain.augment.hflip_p", 1.5, 1), ("pretrain.text.max_length", 0, 1), ("finetune.epochs", -1, 1),
    ("finetune.batch_size", 0, 1), ("finetune.k", 1, 0.999), ("evaluation.n_bootstrap", 0, 1),
    ("label_efficiency.fractions", [0.1, 0], [0.001, 1]), ("label_efficiency.fractions", [1.5], [1]),
]


def nested(key: str, value) -> dict:
    for name in reversed(key.split(".")):
        value = {name: value}
    return value


def accepted(key: str, value):
    """The typed setting at dotted `key` of a config that sets only it, to `value`."""
    typed = validate_pipeline_config(nested(key, value), source="my.yaml")
    for name in key.split("."):
        typed = getattr(typed, name)
    return typed


@pytest.mark.parametrize(("key", "bad", "edge"), RANGES, ids=[f"{k}={b}" for k, b, _ in RANGES])
def test_a_value_out_of_its_range_is_refused_and_the_edge_of_the_range_accepted(key, bad, edge):
    with pytest.raises(InputError, match=r"^my\.yaml\." + key.replace(".", r"\.") + r"(\[\d\])?: expected"):
        validate_pipeline_config(nested(key, bad), source="my.yaml")
    assert accepted(key, edge) == (tuple(edge) if isinstance(edge, list) else edge)


def test_split_weights_may_sum_to_anything_but_zero():
    assert validate_pipeline_config({"split": {"train": 8, "val": 1, "test": 1}}).split.train == 8
    with pytest.raises(InputError, match=r"config\.split\.train: train \+ val \+ test must be > 0"):
        validate_pipeline_config({"split": {"train": 0, "val": 0, "test": 0}})


def test_every_declared_range_is_well_formed_and_holds_its_default():
    import dataclasses

    from usconvirt.config import _broken_rule, _interval
    from usconvirt.pipeline_config import PipelineConfig

    ranged = []

    def walk(config, where):
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{where}.{f.name}")
            elif "range" in f.metadata:
                _interval(f.metadata["range"])
                assert _broken_rule(value, f.metadata) is None, f"{where}.{f.name}"
                ranged.append(f"{where}.{f.name}")

    walk(PipelineConfig(), "config")
    assert len(ranged) > 50 and "config.evaluation.n_bootstrap" in ranged


def test_run_check_refuses_a_value_out_of_range_before_any_stage(tmp_path):
    demo = copy.deepcopy(CONFIGS["demo"])
    demo["evaluation"]["n_bootstrap"] = 0
    config = save_yaml(demo, tmp_path / "c.yaml")
    command = [sys.executable, "-m", "usconvirt", "run", str(config), "--check"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0] == f"error: {config}.evaluation.n_bootstrap: expected at least 1, got 0"
    assert list(tmp_path.iterdir()) == [config]


# Settings Lightning would check only when the stage builds its Trainer: a misspelt value, and another
# value it accepts.
CHOICES = [
    ("pretrain.trainer.precision", "bf16_mixed", "bf16-mixed"), ("pretrain.trainer.precision", "fp16", 16),
    ("finetune.trainer.precision", "half", "16-mixed"), ("cluster.trainer.accelerator", "gpus", "gpu"),
    ("pretrain.trainer.accelerator", "cuda:0", "cuda"), ("pretrain.trainer.strategy", "dpp", "ddp"),
    ("finetune.trainer.strategy", "ddp-spawn", "ddp_spawn"),
]


@pytest.mark.parametrize(("key", "bad", "good"), CHOICES, ids=[f"{k}={b}" for k, b, _ in CHOICES])
def test_a_trainer_name_lightning_does_not_know_is_refused_and_one_it_knows_accepted(key, bad, good):
    with pytest.raises(InputError, match=r"^my\.yaml\." + key.replace(".", r"\.") + ": expected one of"):
        validate_pipeline_config(nested(key, bad), source="my.yaml")
    assert accepted(key, good) == str(good)


def test_the_trainer_names_written_out_are_the_installed_lightnings():
    from typing import get_args

    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    from usconvirt.training.config import ACCELERATORS, PRECISIONS, STRATEGIES

    assert set(ACCELERATORS) == {"auto", "gpu", *AcceleratorRegistry.available_accelerators()}
    assert set(PRECISIONS) == {*get_args(_PRECISION_INPUT_STR), *get_args(_PRECISION_INPUT_STR_ALIAS)}
    assert set(STRATEGIES) == {"auto", *StrategyRegistry.available_strategies()}


# Trainer strings Lightning parses only when the stage builds its Trainer: a malformed one, a well-formed one.
FORMATS = [
    ("pretrain.trainer.max_time", "6h", "00:06:00:00"),
    ("cluster.trainer.max_time", "00:00:06", "00:00:06:00"), ("pretrain.trainer.devices", "one", "1"),
    ("finetune.trainer.devices", "gpu0", "0,1"), ("cluster.trainer.devices", "all", "-1"),
    ("pretrain.trainer.devices", "0", "0,"),
]


@pytest.mark.parametrize(("key", "bad", "good"), FORMATS, ids=[f"{k}={b}" for k, b, _ in FORMATS])
def test_a_malformed_trainer_duration_or_device_list_is_refused(key, bad, good):
    with pytest.raises(InputError, match=r"^my\.yaml\." + key.replace(".", r"\.") + ": expected .*" + bad):
        validate_pipeline_config(nested(key, bad), source="my.yaml")
    assert accepted(key, good) == good


def test_lightning_parses_the_trainer_strings_the_config_accepts_and_refuses_the_others():
    import lightning as L
    from lightning.fabric.utilities.device_parser import _normalize_parse_gpu_string_input
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import Timer

    for key, bad, good in FORMATS:
        if key.endswith("max_time"):
            Timer(duration=good)
            with pytest.raises(MisconfigurationException):
                Timer(duration=bad)
        else:
            _normalize_parse_gpu_string_input(good)
            # the parser refuses a malformed string; the Trainer, whatever the accelerator, a count of 0
            with pytest.raises((ValueError, MisconfigurationException)):
                L.Trainer(devices=_normalize_parse_gpu_string_input(bad), accelerator="cpu", logger=False,
                          enable_checkpointing=False)
