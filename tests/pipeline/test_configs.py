"""The shipped pipeline configs parse into every stage's dataclass (unknown keys would be rejected)."""

from __future__ import annotations

import pytest

from usconvirt.config import from_dict, load_yaml
from usconvirt.pipeline_config import packaged_config
from usconvirt.stages import STAGES

SECTIONS = {
    "synth": ("usconvirt.synth.config", "SynthConfig"),
    "split": ("usconvirt.data.split", "SplitConfig"),
    "cluster": ("usconvirt.clustering.config", "ClusterConfig"),
    "sentences": ("usconvirt.text.sentences", "SentenceConfig"),
    "pairing": ("usconvirt.pairing", "PairConfig"),
    "pretrain": ("usconvirt.training.pretrain", "PretrainConfig"),
    "finetune": ("usconvirt.training.finetune", "FinetuneConfig"),
}


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_every_section_builds_its_stage_config(name):
    import importlib

    config = load_yaml(packaged_config(name))
    for section, (module, cls) in SECTIONS.items():
        if section in config:
            built = from_dict(getattr(importlib.import_module(module), cls), config[section], source=section)
            for key, value in config[section].items():  # every setting written is the one built
                if not isinstance(value, dict):
                    assert getattr(built, key) == (tuple(value) if isinstance(value, list) else value), key


def test_paper_config_has_the_papers_pretraining_settings():
    pretrain = load_yaml(packaged_config("paper"))["pretrain"]
    assert pretrain["tau"] == 0.1 and pretrain["lam"] == 0.75 and pretrain["proj_dim"] == 512
    assert pretrain["batch_size"] == 32 and pretrain["lr"] == 1e-4 and pretrain["image_size"] == 224
    assert pretrain["image"]["arch"] == "resnet50" and pretrain["text"]["name"] == "camembert-base"


def test_stage_names_are_unique_and_in_pipeline_order():
    names = [s.name for s in STAGES]
    assert len(names) == len(set(names))
    assert names.index("cluster") < names.index("pair") < names.index("pretrain") < names.index("finetune")
