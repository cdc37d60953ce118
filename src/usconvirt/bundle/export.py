"""`usconvirt export RUN --out BUNDLE`: a run's fine-tuned classifier and organ model as a bundle.

The bundle is self-contained: weights in safetensors with their architecture configs, the preprocessing
parameters, the exam decision rule chosen on validation, ONNX copies checked against PyTorch, and a
model card. Nothing in it needs the run directory, the run config or a network.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from usconvirt.bundle import layout
from usconvirt.bundle.classifier_io import save_bundle_classifier
from usconvirt.bundle.model_card import model_card
from usconvirt.bundle.onnx_export import AbnormalProbability, export_onnx
from usconvirt.bundle.organ import DeepOrganModel, organ_model_from_run, save_organ_model
from usconvirt.bundle.preprocessing import preprocessing_parameters
from usconvirt.config import load_yaml
from usconvirt.data import load_dataset
from usconvirt.data.frames import load_frames
from usconvirt.data.split import read_split
from usconvirt.errors import InputError
from usconvirt.evaluation.evaluate import read_predictions, run_metrics
from usconvirt.evaluation.exam_level import dataset_sides, exam_level_report, with_sides
from usconvirt.evaluation.metrics import confidence_interval
from usconvirt.io import atomic_dir, read_json, reading
from usconvirt.models.classifier import load_classifier
from usconvirt.models.convirt import ConVIRT, load_convirt, save_convirt
from usconvirt.run_layout import METRICS_JSON, PREDICTIONS, VAL_PREDICTIONS, RunLayout

log = logging.getLogger(__name__)

ONNX_CHECK_FRAMES = 16  # validation frames on which ONNX and PyTorch are compared
ONNX_TOLERANCE = 1e-4  # on P(abnormal) and cluster probabilities


@dataclass
class ExportConfig:
    """Which classifier, and how its exam threshold is chosen on validation."""

    init: str | None = None  # a RUN/finetune/NAME; None: the best validation macro-F1
    criterion: str = "macro_f1"  # macro_f1 | youden | sensitivity (with target_sensitivity)
    target_sensitivity: float | None = None
    onnx: bool = True
    n_bootstrap: int = 1000
    seed: int = 0
    overwrite: bool = False
    with_text: bool = False  # also ship RUN/pretrain's joint encoder, for prompt maps and zero-shot scores


def choose_init(run: Path, init: str | None) -> str:
    """The fine-tuning run to export: the one named, else the best validation macro-F1 (ties: by name)."""
    finetune = RunLayout(run).finetune
    runs = sorted(p.parent.name for p in finetune.glob(f"*/{METRICS_JSON}"))
    if not runs:
        raise InputError("no fine-tuned classifier (RUN/finetune/*/metrics.json)", file=finetune)
    if init is not None:
        if init not in runs:
            raise InputError(f"no fine-tuning run '{init}', found {', '.join(runs)}", file=finetune,
                             field="init")
        return init

    def val_f1(name: str) -> float:
        with reading(finetune / name / METRICS_JSON):
            return float(read_json(finetune / name / METRICS_JSON).get("val", {}).get("macro_f1") or 0.0)

    return max(runs, key=lambda name: (val_f1(name), name))


def run_dataset_dir(run: Path) -> Path | None:
    """The run's dataset: the resolved config's `dataset`, else RUN/dataset (the demo's synthetic one)."""
    run_files = RunLayout(run)
    config = run_files.resolved_config
    named = load_yaml(config).get("dataset") if config.is_file() else None
    for candidate in (Path(named) if named else None, run_files.dataset_dir):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def _counts(run: Path, finetune_metrics: dict[str, Any]) -> dict[str, dict[str, int]]:
    split_path = RunLayout(run).split
    split = read_split(split_path) if split_path.is_file() else pd.DataFrame(columns=["part", "patient_id"])
    frames = finetune_metrics.get("frames", {})
    return {part: {"exams": int((split["part"] == part).sum()),
                   "patients": int(split.loc[split["part"] == part, "patient_id"].nunique()),
                   "frames": int(frames.get(part, 0))} for part in ("train", "val", "test")}


def _frame_level(test: pd.DataFrame, n_bootstrap: int, seed: int) -> dict[str, Any]:
    point, samples = run_metrics(test, n_bootstrap=n_bootstrap, seed=seed)
    out: dict[str, Any] = {"units": len(test)}
    for name, value in point.items():
        low, high = confidence_interval(samples[name])
        out[name] = {"value": value, "ci_low": low, "ci_high": high}
    return out


def export_bundle(run_dir: str | Path, out: str | Path, config: ExportConfig | None = None) -> dict[str, Any]:
    """Write the bundle; return what was exported (init, rule, ONNX differences)."""
    config = config or ExportConfig()
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError("run directory does not exist", file=run)
    name = choose_init(run, config.init)
    run_files = RunLayout(run)
    finetuned = run_files.finetuning(name)
    ft_metrics = read_json(finetuned / METRICS_JSON)
    ft_config = load_yaml(finetuned / "config.yaml")
    classifier = load_classifier(finetuned / "model").eval()
    image_size = int(ft_config["image_size"])
    dataset_dir = run_dataset_dir(run)
    organ = organ_model_from_run(run_files.cluster, dataset_dir) if run_files.cluster.is_dir() else None
    if organ is None:
        log.warning("no clustering output in %s: the bundle holds no organ model, and predict needs the "
                    "organs in its input", run)
    sides = dataset_sides(dataset_dir) if dataset_dir is not None else {}
    text_model = text_model_from_run(run) if config.with_text else None
    test = with_sides(read_predictions(finetuned / PREDICTIONS), sides)
    val = with_sides(read_predictions(finetuned / VAL_PREDICTIONS), sides)
    exam = exam_level_report(test, val, criterion=config.criterion,
                             target_sensitivity=config.target_sensitivity, n_bootstrap=config.n_bootstrap,
                             seed=config.seed)
    test_metrics = {"frame": _frame_level(test, config.n_bootstrap, config.seed), "exam": exam["exam"]}
    if "kidney" in exam:
        test_metrics["kidney"] = exam["kidney"]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    card = {"init_name": name, "init": ft_metrics.get("init", name), "loss": ft_metrics.get("loss", ""),
            "run_name": run.resolve().name, "created": created, "counts": _counts(run, ft_metrics),
            "train_class_counts": ft_metrics.get("train_class_counts", {}), "image_size": image_size,
            "organ_size": organ.image_size if organ is not None else None, "rule": exam["rule"],
            "organ_kind": organ.kind if organ is not None else None,
            "test_metrics": test_metrics, "n_bootstrap": config.n_bootstrap,
            "synthetic": dataset_dir is not None and (dataset_dir / "synth_config.yaml").is_file(),
            "text_model": text_model is not None}

    onnx_diff: dict[str, float] = {}
    with atomic_dir(out, overwrite=config.overwrite) as tmp:
        save_bundle_classifier(classifier, tmp / layout.CLASSIFIER_DIR, image_size)
        if organ is not None:
            save_organ_model(organ, tmp / layout.ORGAN_DIR)
        if text_model is not None:
            save_convirt(text_model, tmp / layout.TEXT_DIR)
        _write_json(tmp / layout.PREPROCESSING,
                    preprocessing_parameters(image_size, card["organ_size"]))
        kidney = organ.select if organ is not None else "kidney"
        _write_json(tmp / layout.DECISION, {"exam": exam["rule"], "kidney_organ": kidney,
                                            "chosen_on": "validation exams of the run"})
        if config.onnx:
            sample = val["image_id"].head(ONNX_CHECK_FRAMES).tolist()
            onnx_diff["classifier"] = export_onnx(
                AbnormalProbability(classifier), tmp / layout.CLASSIFIER_ONNX, image_size, "p_abnormal",
                frames=_frames(dataset_dir, sample, image_size))
            if isinstance(organ, DeepOrganModel):  # a pixel k-means model is numpy, not a graph
                onnx_diff["organ_model"] = export_onnx(
                    organ, tmp / layout.ORGAN_ONNX, organ.image_size, "cluster_probs",
                    frames=_frames(dataset_dir, sample, organ.image_size))
        for model_name, diff in onnx_diff.items():
            if diff > ONNX_TOLERANCE:
                log.warning("%s.onnx differs from PyTorch by up to %.2e (more than %.0e)", model_name, diff,
                            ONNX_TOLERANCE)
        (tmp / layout.MODEL_CARD).write_text(model_card(card), encoding="utf-8")
        layout.write_manifest(tmp, {"created": created, "init": name, "onnx_max_abs_diff": onnx_diff,
                                    "test_metrics": test_metrics, "text_model": text_model is not None})
    log.debug("exported %s (%s init) to %s", run, name, out)
    return {"init": name, "rule": exam["rule"], "onnx_max_abs_diff": onnx_diff, "test_metrics": test_metrics}


def text_model_from_run(run: Path) -> ConVIRT:
    """The run's ConVIRT pre-training (RUN/pretrain): its image and text encoders, tokenizer, projections."""
    pretrain = RunLayout(run).pretraining("convirt")
    if not (pretrain / "projections.pt").is_file():
        raise InputError("--with-text needs the run's ConVIRT pre-training (RUN/pretrain/projections.pt)",
                         file=pretrain, field="with_text")
    return load_convirt(pretrain)


def _frames(dataset_dir: Path | None, image_ids: list[str], size: int) -> np.ndarray | None:
    """Preprocessed frames of the run's dataset for the ONNX check; None (random frames) without it."""
    if dataset_dir is None or not image_ids:
        return None
    return load_frames(load_dataset(dataset_dir), size, image_ids=image_ids)[0]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
