"""The `represent` stage: measures of the learned representations that no other stage writes.

Representation quality (t-SNE, linear probe, kNN, silhouette) of every initialisation the run has, then
image-text retrieval and zero-shot classification with the ConVIRT model, into RUN/evaluation/
(docs/evaluation.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from usconvirt.config import load_yaml
from usconvirt.data.split import exams_in, read_split
from usconvirt.errors import InputError
from usconvirt.evaluation.run_inputs import load_run_dataset, pretraining_runs
from usconvirt.run_layout import SPLIT, RunLayout
from usconvirt.text.sentence_table import read_sentences


def run_encoders(layout: RunLayout, *, imagenet: bool) -> dict[str, str]:
    """Name -> init of the encoders to compare: random, ImageNet if asked, each pre-training run's encoder.

    The controls (RUN/pretrain_shuffled, RUN/pretrain_simclr, RUN/pretrain_report_labels) are measured
    beside ConVIRT when they exist.
    """
    encoders = {"random": "random"}
    if imagenet:
        encoders["ImageNet"] = "imagenet"
    for name, directory in pretraining_runs(layout).items():
        if (directory / "image_encoder").is_dir():
            encoders[name] = f"convirt:{directory}"
    return encoders


def measure_run(run: str | Path | RunLayout, *, dataset: str | Path | None = None, imagenet: bool = False,
                seed: int = 0) -> dict[str, Any]:
    """Representation quality of every encoder of the run, then retrieval and zero-shot with ConVIRT's.

    All encoders are measured at the pre-training's image size and architecture, so every initialisation
    sees the same frames.
    """
    from usconvirt.evaluation.representation import RepresentationConfig, representation_quality
    from usconvirt.evaluation.retrieval import heldout_pairs, retrieval_and_zero_shot

    layout = RunLayout.of(run)
    data = load_run_dataset(layout, dataset)
    if data is None or not layout.split.exists():
        raise InputError(f"measuring representations needs the run's dataset and {SPLIT}", file=layout.out)
    split = read_split(layout.split)
    pretrain = layout.pretrain
    saved = pretrain / "config.yaml"
    model = load_yaml(saved).get("model", {}) if saved.exists() else {}
    config = RepresentationConfig(image_size=int(model.get("image_size", 224)),
                                  arch=model.get("image", {}).get("arch", "resnet50"), seed=seed)
    out = layout.evaluation
    encoders = run_encoders(layout, imagenet=imagenet)
    results: dict[str, Any] = {"representation": representation_quality(data, split, encoders, out, config)}
    if (pretrain / "projections.pt").exists() and layout.sentences.exists():
        pairs = heldout_pairs(data, read_sentences(layout.sentences), split, part="test")
        test_exams = exams_in(split, "test")
        test_ids = data.images.loc[data.images["exam_id"].astype(str).isin(test_exams), "image_id"].tolist()
        results["retrieval"] = retrieval_and_zero_shot(data, pairs, pretrain, test_ids, out)
    return results
