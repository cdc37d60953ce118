"""The whole pipeline's configuration as one typed dataclass, validated before any stage runs.

Each section is the config dataclass of the stage that reads it, so every default lives in one place
(the stage's dataclass) and a misspelt key, a wrong type or a value outside its allowed set or range is
refused with one line naming the section and key, before anything is written; so is a missing input path (the
dataset, a split file, a cluster mapping, a UMLS release) when a run starts. Every section's dataclass
lives in a module free of torch, Lightning, EDS-NLP and transformers, so `usconvirt run CONFIG --check`
answers at once.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from usconvirt.clustering.config import ClusterConfig
from usconvirt.config import from_dict, load_yaml
from usconvirt.data.config import PairConfig, SplitConfig
from usconvirt.errors import InputError
from usconvirt.evaluation.config import FRACTIONS, EvaluationConfig, LabelEfficiencyConfig
from usconvirt.synth.config import SynthConfig
from usconvirt.text.config import SentenceConfig, TokenizerConfig
from usconvirt.text.umls import umls_dir_or_subset
from usconvirt.training.config import FinetuneConfig, PretrainConfig

# Initialisations the fine-tuning stage knows how to build (stages.finetune_inits).
INITS = ("random", "convirt", "imagenet", "shuffled", "simclr", "report_labels", "convirt-equiv")

# The paths a run reads and no stage of it writes, by dotted key: each is read before anything of the run
# could create it (a cluster mapping before the clustering writes its own mapping.yaml), so each must
# exist when the run starts. Outputs (`out`, caches, `mlflow_uri`) are created, and not listed.
INPUT_PATHS = {"dataset": "directory", "split.file": "file", "cluster_mapping": "file",
               "sentences.umls_dir": "directory"}
# Keys that take a Hugging Face hub id or a local directory: "org/name" may be either, so only a value
# written as a path (absolute, ./ or ../) is looked for.
HUB_OR_PATH = ("cluster.encoder.weights", "pretrain.image.weights", "pretrain.text.name")


@dataclass
class LabelEfficiencySection:
    """The pipeline's label-efficiency stage: off by default; its fine-tuning settings are `finetune`'s."""

    enabled: bool = False
    fractions: tuple[float, ...] = field(default=LabelEfficiencyConfig.fractions, metadata=FRACTIONS)


@dataclass
class PipelineConfig:
    """`usconvirt run CONFIG.yaml`: the run directory, the dataset, and one section per stage."""

    out: str | None = None
    dataset: str | None = None  # None: the synth stage generates a corpus into RUN/dataset
    synth: SynthConfig = field(default_factory=SynthConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    cluster_mapping: str | None = None  # a cluster -> organ YAML written by hand after looking at montages
    sentences: SentenceConfig = field(default_factory=SentenceConfig)
    pairing: PairConfig = field(default_factory=PairConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    finetune_inits: tuple[str, ...] = ("random", "convirt", "imagenet")
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    label_efficiency: LabelEfficiencySection = field(default_factory=LabelEfficiencySection)


def validate_pipeline_config(config: dict[str, Any], *, source: str = "config") -> PipelineConfig:
    """The typed config, or an InputError naming `source`, the section and the key."""
    # YAML sections written as `cluster:` with nothing under them read as None: an empty section.
    values = {k: ({} if v is None and k in _SECTIONS else v) for k, v in config.items()}
    typed = from_dict(PipelineConfig, values, source=source)
    resolve_derived(typed, values)
    unknown = [name for name in typed.finetune_inits if name not in INITS]
    if unknown:
        raise InputError(f"unknown initialisation(s) {unknown}; expected some of {list(INITS)}",
                         file=f"{source}.finetune_inits")
    for section in ("cluster", "pretrain", "finetune"):
        # else the stage would find the package missing only when it starts, after the stages before it
        if getattr(typed, section).trainer.logger == "mlflow" and importlib.util.find_spec("mlflow") is None:
            raise InputError("needs the mlflow package (pip install 'usconvirt[mlflow]')",
                             file=f"{source}.{section}.trainer.logger")
    if typed.sentences.backend == "quickumls" and importlib.util.find_spec("quickumls") is None:
        raise InputError("needs the [umls] extra: pip install 'usconvirt[umls]'",
                         file=f"{source}.sentences.backend")
    return typed


def validate_run_config(config: dict[str, Any], *, source: str = "config") -> PipelineConfig:
    """What `usconvirt run` accepts, `--check` included: the typed config, whose input paths all exist."""
    typed = validate_pipeline_config(config, source=source)
    check_input_paths(typed, source=source)
    return typed


def check_input_paths(config: PipelineConfig, *, source: str = "config") -> None:
    """An InputError for the first missing input path, naming `source`, the section and key, and the
    absolute path looked for: a relative path is read from the working directory, as the stages read it."""
    wanted = {**INPUT_PATHS, **{key: "directory" for key in HUB_OR_PATH}}
    for key, kind in wanted.items():
        value = config
        for name in key.split("."):
            value = getattr(value, name)
        if value is None or (key in HUB_OR_PATH and not str(value).startswith(("/", "./", "../"))):
            continue
        path, looked_for = Path(value), os.path.abspath(value)
        if not (path.is_dir() if kind == "directory" else path.is_file()):
            raise InputError(f"no such {kind} '{value}'" + (f" (looked for {looked_for})"
                                                            if looked_for != str(value) else ""),
                             file=f"{source}.{key}")
    if config.sentences.umls_dir is not None:
        # a release unpacked one level up (2024AA/META/) would otherwise pass, and the run stop at the
        # sentence stage, after the clustering
        try:
            umls_dir_or_subset(config.sentences.umls_dir)
        except InputError as error:
            raise InputError(f"{error.message} in '{config.sentences.umls_dir}'",
                             file=f"{source}.sentences.umls_dir") from None


def resolve_derived(config: PipelineConfig, values: dict[str, Any]) -> None:
    """Settings that follow from others unless the config sets them, filled in once, here.

    Random init fine-tunes the pre-training's architecture at its image size, so the comparison with
    ConVIRT isolates the weights; the pipeline regenerates its corpus whenever the synth stage reruns.
    """
    finetune = values.get("finetune") or {}
    if "arch" not in finetune:
        config.finetune.arch = config.pretrain.image.arch
    if "image_size" not in finetune:
        config.finetune.image_size = config.pretrain.image_size
    config.synth.overwrite = True


_SECTIONS = {"synth", "split", "cluster", "sentences", "pairing", "tokenizer", "pretrain", "finetune",
             "evaluation", "label_efficiency"}


def resolve_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The YAML config (or the packaged demo config) with `overrides` merged in, section by section."""
    config = load_yaml(path) if path is not None else load_yaml(packaged_config("demo"))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def section_config(path: str | Path | None, section: str, overrides: dict[str, Any] | None = None) -> Any:
    """A stage subcommand's settings, read as `usconvirt run` reads them: from a pipeline config (a file
    holding any stage section) the whole config is validated, so derived settings (fine-tuning's arch and
    image size from pre-training's) are the run's; a file of the section's keys alone, or no file, gives
    the section's dataclass. Flags that are set (not None) override the file, and count as set there."""
    from usconvirt.config import config_from_file

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values = load_yaml(path) if path is not None else {}
    if not any(key in _SECTIONS for key in values):
        return config_from_file(type(getattr(PipelineConfig(), section)), path, section, given)
    values[section] = {**(values.get(section) or {}), **given}
    return getattr(validate_pipeline_config(values, source=str(path)), section)


def packaged_config(name: str) -> Path:
    return Path(__file__).parent / "resources" / "configs" / f"{name}.yaml"
