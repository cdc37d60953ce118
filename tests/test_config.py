"""Configs from YAML: a stage's keys at the top level or under its section, flags on top."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from usconvirt.config import config_from_file
from usconvirt.errors import InputError


@dataclass
class Stage:
    epochs: int = 1
    lr: float = 0.1


def test_section_of_a_pipeline_config_is_read_and_set_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("other: {x: 1}\nstage: {epochs: 5, lr: 0.5}\n")
    assert config_from_file(Stage, path, "stage", {"epochs": 9, "lr": None}) == Stage(epochs=9, lr=0.5)


def test_top_level_keys_and_no_file(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("epochs: 3\n")
    assert config_from_file(Stage, path, "stage") == Stage(epochs=3)
    assert config_from_file(Stage, None, "stage", {"lr": 0.2}) == Stage(lr=0.2)


def test_unknown_key_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epoch: 3\n")
    with pytest.raises(InputError, match="bad.yaml.*unknown key"):
        config_from_file(Stage, path, "stage")
