"""The clustering stage: cluster pixels (k-means or deep), map clusters to organs, select, score, check."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support

from usconvirt.clustering.baselines import PLAIN_DIMS, feature_blocks, kmeans_predict, texture_block
from usconvirt.clustering.config import METHODS, ClusterConfig
from usconvirt.clustering.frames import load_cluster_frames
from usconvirt.clustering.health import health_problems
from usconvirt.clustering.mapping import (
    UNMAPPED,
    fill_unmapped,
    kidney_mapping_from_labels,
    load_mapping,
    mapping_from_labels,
    mapping_part,
    save_mapping,
)
from usconvirt.clustering.model import ClusterModel
from usconvirt.clustering.module import ClusteringModule
from usconvirt.clustering.montage import write_montages
from usconvirt.clustering.organ_model import (
    MODEL_DIR,
    FeatureRecipe,
    OrganModel,
    fit_organ_model,
    save_organ_model,
)
from usconvirt.clustering.schedule import StableAssignments, min_used_clusters, plan_steps
from usconvirt.clustering.selection import (
    BASELINE,
    Candidate,
    choose,
    cross_validated_score,
    label_scores,
    parse_candidates,
    selection_targets,
)
from usconvirt.config import from_dict, load_yaml, save_yaml, to_dict
from usconvirt.data.dataset import Dataset, load_dataset
from usconvirt.data.frames import FrameDataset
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, write_table
from usconvirt.run_layout import ASSIGNMENTS, CLUSTER_MAPPING, METRICS_JSON, MONTAGES_DIR, SELECTED
from usconvirt.training.trainer import build_trainer, fit

log = logging.getLogger(__name__)

MODEL_FIELDS = ("clusters", "image_size", "encoder")  # changing these makes the checkpoint unusable


def run_clustering(
    dataset: Dataset | str | Path,
    out_dir: str | Path,
    config: ClusterConfig | None = None,
    *,
    image_ids: list[str] | None = None,
    mapping_file: str | Path | None = None,
    mapping_ids: list[str] | None = None,
) -> dict:
    """Cluster `image_ids` (default: all frames) and write the stage's outputs.

    `mapping_ids` are extra labelled frames (for instance the labelled train exams) that are assigned to
    clusters but never clustered on nor written to assignments.csv: they name the clusters and score them.
    Writes out_dir/{assignments.csv, selected.csv, mapping.yaml, metrics.json, config.yaml, montages/}
    and organ_model/ (method kmeans: the fitted model, clustering/organ_model.py) or checkpoints/ (deep);
    returns the metrics. Organ and normal/abnormal labels are read only to name clusters and to score;
    with neither and no mapping file, the outputs for naming clusters by eye are written and an
    InputError says what to do.
    """
    config = config or ClusterConfig()
    if config.method not in METHODS:
        raise InputError(f"unknown method '{config.method}', expected one of {', '.join(METHODS)}",
                         field="method")
    out_dir = Path(out_dir)
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    ids = _checked_ids(dataset, image_ids)
    extra = [i for i in dict.fromkeys(mapping_ids or []) if i not in set(ids)]
    if extra:
        _checked_ids(dataset, extra + ids)
    all_ids = ids + extra
    all_frames, crop_frames = load_cluster_frames(dataset, config.image_size, all_ids, config.workers)
    frames, n = all_frames[: len(ids)], len(ids)
    images = dataset.images.set_index("image_id").loc[all_ids]
    organs = images["organ"].tolist()
    labels = images["label"].tolist() if "label" in images else [""] * len(all_ids)
    exams = images["exam_id"].tolist()
    focus = config.select or "kidney"

    started = time.perf_counter()
    fitted = fit_candidates(all_frames, n, config)
    kmeans_seconds = time.perf_counter() - started
    training = {"global_step": 0, "stopped_because": "no training (k-means)", "batch_size": None}
    if config.method != "kmeans":
        _check_resumable(config, out_dir)
        model, training = _train_deep(config, frames, out_dir)
        if not training:  # not the global-zero process of a DDP run
            return {}
        probs = predict_probabilities(model, all_frames, config.batch_size)
        fitted[config.method] = Fitted(None, probs.argmax(1), probs)
        features = encoder_features(model, all_frames, config.batch_size)
        k = k_fit(config, config.clusters, n)
        fitted["kmeans_encoder"] = Fitted(None, *kmeans_predict(features[:n], features, k, config.seed))
    train_seconds = time.perf_counter() - started
    baseline = Candidate(BASELINE.features, k_fit(config, BASELINE.clusters, n)).name
    selection = select_candidate(fitted, organs, labels, exams, config, focus, baseline)
    chosen = fitted[selection["chosen"]]
    probs, organ_model = chosen.probs, chosen.model
    # the chosen K names, sizes and checks the clusters; config.yaml records the chosen features
    config = replace(config, clusters=probs.shape[1],
                     features=organ_model.recipe.kind if organ_model is not None else config.features)
    clusters_all, confidence_all = probs.argmax(1), probs.max(1)
    clusters, confidence = clusters_all[:n], confidence_all[:n]
    # named before anything is written: a bad mapping file stops the stage with no output
    naming = name_clusters(clusters_all, organs, labels, exams, config, mapping_file, chosen.centroids)
    mapping = naming["mapping"]
    if config.method == "kmeans":
        out_dir.mkdir(parents=True, exist_ok=True)
        save_yaml(config, out_dir / "config.yaml")
    if organ_model is not None:
        save_organ_model(organ_model, out_dir / MODEL_DIR)  # export ships it (bundle/organ.py)
    if mapping_file is None or Path(mapping_file).resolve() != (out_dir / CLUSTER_MAPPING).resolve():
        # the user's own edited mapping.yaml is left as written: the pipeline reruns the stage when it changes
        save_mapping(mapping, out_dir / CLUSTER_MAPPING)
    write_montages(frames, clusters, confidence, config.clusters, out_dir / MONTAGES_DIR,
                   per_cluster=config.montage_frames, seed=config.seed, mapping=mapping)

    assignments = pd.DataFrame({"image_id": ids, "cluster": clusters, "confidence": confidence.round(4),
                                "organ": [mapping[int(c)] for c in clusters]})
    write_table(assignments, out_dir / ASSIGNMENTS)
    selected = assignments[assignments["organ"] == config.select] if config.select else assignments.iloc[:0]
    if config.select:
        write_table(selected, out_dir / SELECTED)

    scored = naming["scored"]
    metrics = {
        "method": config.method,
        "frames": n,
        "mapping_frames": len(extra),
        "crop_frames": crop_frames,
        "selected": len(selected),
        "candidate": selection["chosen"],
        "kmeans_clusters": len(chosen.centroids) if chosen.centroids is not None else None,
        "cluster_sizes": np.bincount(clusters, minlength=config.clusters).tolist(),
        **training,
        "train_seconds": round(train_seconds, 2),
        "kmeans_seconds": round(kmeans_seconds, 2),
        "mapping_source": naming["source"],
        "mapping": {str(c): o for c, o in sorted(mapping.items())},
        "headline": naming["headline"],
        **organ_metrics([o if s else "" for o, s in zip(organs, scored, strict=True)],
                        [mapping[int(c)] for c in clusters_all], focus),
    }
    if naming["mapped"] is not None:
        metrics["mapped_scores"] = organ_metrics(
            [o if m else "" for o, m in zip(organs, naming["mapped"], strict=True)],
            [mapping[int(c)] for c in clusters_all], focus)
    metrics["selection"] = {key: v for key, v in selection.items() if key != "scores"}
    metrics["baselines"] = candidate_table(fitted, selection, organs, naming, config, focus)
    problems = health_problems(clusters, len(selected), config.clusters, config.select,
                               config.min_select_share, config.max_cluster_share)
    problems += floor_problems(metrics["baselines"], selection["chosen"], selection["baseline"])
    metrics["warnings"] = problems
    with atomic_path(out_dir / METRICS_JSON) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    log.info("clustering (%s): %d frames, %d selected, %s steps (%s), weighted F1 %s, kidney F1 %s [%s]",
             config.method, n, len(selected), training["global_step"], training["stopped_because"],
             metrics.get("weighted_f1"), metrics.get("kidney_f1"), naming["headline"])
    if naming["source"] == "none" and config.select:
        raise InputError(f"no organ or normal/abnormal labels to name the clusters: look at "
                         f"{out_dir / MONTAGES_DIR}/cluster_XX.png, write organs into "
                         f"{out_dir / CLUSTER_MAPPING} "
                         f"(e.g. '3: kidney') and rerun with --mapping {out_dir / CLUSTER_MAPPING} "
                         f"(usconvirt run: cluster_mapping: {out_dir / CLUSTER_MAPPING})",
                         field="mapping")
    for problem in problems:
        if config.strict:
            raise InputError(f"clustering failed its checks: {problem}", field="cluster")
        log.warning("clustering: %s", problem)
    return metrics


@dataclass
class Fitted:
    """One candidate clustering of every frame (those clustered, then those that only name clusters)."""

    model: OrganModel | None  # k-means: the fitted organ model; deep candidates: None
    clusters: np.ndarray  # (N,) cluster ids
    probs: np.ndarray  # (N, K) cluster probabilities

    @property
    def centroids(self) -> np.ndarray | None:
        return self.model.centroids if self.model is not None else None


def k_fit(config: ClusterConfig, k: int, n: int) -> int:
    """K capped at frames / min_frames_per_cluster: clusters named by majority vote need several frames
    each, and 48 clusters of 60 frames leave most unnamed."""
    return min(k, max(2, n // max(1, config.min_frames_per_cluster)))


def candidate_list(config: ClusterConfig) -> list[Candidate]:
    """config.candidates, the baseline first; with none, config.features at config.clusters (the one
    used), then the baseline (fitted and scored beside it as the floor)."""
    try:
        if not config.candidates:
            return parse_candidates([f"{config.features}:{config.clusters}"])[::-1]
        return parse_candidates(config.candidates)
    except ValueError as error:
        raise InputError(str(error), field="candidates") from None


def fit_candidates(all_frames: np.ndarray, n: int, config: ClusterConfig) -> dict[str, Fitted]:
    """Each candidate's k-means fitted on the first `n` frames and applied to all, named by the K it was
    fitted with (capped by the frame count, k_fit); candidates capped to an already fitted one are left
    out. Feature blocks are computed once per feature space."""
    fitted: dict[str, Fitted] = {}
    blocks = {}
    for candidate in candidate_list(config):
        candidate = Candidate(candidate.features, k_fit(config, candidate.clusters, n))
        if candidate.name in fitted:
            continue
        recipe = FeatureRecipe(candidate.features, PLAIN_DIMS if candidate.features == "pca32" else
                               config.pixel_dims, config.pixel_blur_px, config.seed, config.image_size)
        if candidate.features == "texture" and "robust" in blocks:  # texture is robust + one block
            blocks["texture"] = [*blocks["robust"], texture_block(all_frames)]
        if candidate.features not in blocks:
            blocks[candidate.features] = feature_blocks(all_frames, candidate.features, config.pixel_blur_px)
        model = fit_organ_model(blocks[candidate.features], n, candidate.clusters, candidate.clusters, recipe)
        fitted[candidate.name] = Fitted(model, *model.soft_assign_blocks(blocks[candidate.features]))
    return fitted


def select_candidate(fitted: dict[str, Fitted], organs: list[str], labels: list[str], exams: list[str],
                     config: ClusterConfig, focus: str, baseline: str) -> dict:
    """The chosen candidate, and every candidate's cross-validated score on the labelled frames.

    With organ labels only the exams that name the clusters (the mapping part) score the candidates, so
    the headline's held-out exams stay out of the choice. With no usable label the baseline is used."""
    targets, source = selection_targets(organs, labels, focus)
    if source == "organ labels":
        part = mapping_part(exams, config.map_fraction, config.seed)
        if any(t and p for t, p in zip(targets, part, strict=True)):
            targets = [t if p else "" for t, p in zip(targets, part, strict=True)]
    scores = {name: cross_validated_score(f.clusters, targets, exams, f.probs.shape[1], f.centroids, focus,
                                          config.selection_folds, config.selection_repeats, config.seed)
              for name, f in fitted.items()} if source != "none" else {}
    # without a choice: deep clustering when asked for, else the first candidate (the baseline by default)
    preferred = config.method if config.method in fitted else next(iter(fitted))
    chosen = choose(scores, baseline, config.selection_margin) if config.candidates else preferred
    if not config.candidates:
        why = "fixed by the config (candidates: [])"
    elif chosen is None:
        chosen = preferred
        why = (f"no labelled frames of two exams or more to choose on (labels: {source}): using {chosen}"
               + (", the plain pixel-PCA baseline" if chosen == baseline else ""))
        log.info("clustering: %s", why)
    else:
        best = scores[chosen]
        why = (f"best cross-validated score over {len(fitted)} candidates on {best['frames']} labelled "
               f"frames of {best['exams']} exams ({source})")
        log.info("clustering: chose %s (score %.3f; baseline %s %s): %s", chosen, best["score"], baseline,
                 scores[baseline]["score"] if scores.get(baseline) else "-", why)
    return {"chosen": chosen, "baseline": baseline, "labels": source, "why": why, "scores": scores}


def candidate_table(fitted: dict[str, Fitted], selection: dict, organs: list[str], naming: dict,
                    config: ClusterConfig, focus: str) -> dict:
    """Per candidate: its cross-validated selection score, and its scores on the headline's frames when
    named exactly as the chosen one is (same mapping frames, same vote, same filling of unnamed clusters)."""
    table = {}
    for name, f in fitted.items():
        row = {"chosen": "yes" if name == selection["chosen"] else ""}
        cv = selection["scores"].get(name)
        if cv:
            row |= {f"selection_{key}": cv[key] for key in ("score", "weighted_f1", f"{focus}_f1")}
        if naming["mapped"] is not None:
            mapped = naming["mapped"]
            mapping = mapping_from_labels(f.clusters[mapped], [o for o, m in zip(organs, mapped, strict=True)
                                                               if m], f.probs.shape[1], config.mapping)
            if f.centroids is not None:
                mapping = fill_unmapped(mapping, f.centroids)
            truth = [o for o, s in zip(organs, naming["scored"], strict=True) if s]
            pred = [mapping[int(c)] for c, s in zip(f.clusters, naming["scored"], strict=True) if s]
            row |= label_scores(truth, pred, focus)
        table[name] = row
    return table


def floor_problems(table: dict, chosen: str, baseline: str) -> list[str]:
    """A warning when the chosen candidate scores below the plain pixel baseline on the scored frames."""
    mine, floor = table.get(chosen, {}), table.get(baseline, {})
    if chosen == baseline or "score" not in mine or "score" not in floor or mine["score"] >= floor["score"]:
        return []
    return [f"the chosen clustering {chosen} scores {mine['score']:.3f} on the held-out labelled frames, "
            f"below the plain pixel baseline {baseline} ({floor['score']:.3f})"]


def name_clusters(clusters: np.ndarray, organs: list[str], labels: list[str], exams: list[str],
                  config: ClusterConfig, mapping_file: str | Path | None,
                  centroids: np.ndarray | None = None) -> dict:
    """The mapping, where it came from, and which frames it was made on / is scored on.

    Organ labels: majority vote (or Hungarian) on the exams of the mapping part, scores on the held-out
    exams (the headline) and on the mapping part itself. A mapping file: scores on every labelled frame.
    Normal/abnormal labels only: kidney clusters named from them (kidney_mapping_from_labels).
    With `centroids` (k-means), clusters that no mapping frame named take the nearest named one's organ.
    """
    k = config.clusters
    labelled = np.array([bool(o) for o in organs])
    if mapping_file is not None:
        return {"mapping": load_mapping(mapping_file, k), "source": f"file {mapping_file}",
                "scored": labelled, "mapped": None, "headline": "all labelled frames (mapping from a file)"}
    if labelled.any():
        part = mapping_part(exams, config.map_fraction, config.seed)
        mapped = labelled & part
        if not mapped.any():
            mapped = labelled
        held = labelled & ~mapped
        mapping = mapping_from_labels(clusters[mapped], [o for o, m in zip(organs, mapped, strict=True) if m],
                                      k, config.mapping)
        if centroids is not None:
            mapping = fill_unmapped(mapping, centroids)
        mapping_exams = {e for e, m in zip(exams, mapped, strict=True) if m}
        source = f"organ labels of {int(mapped.sum())} frames ({len(mapping_exams)} exams)"
        if held.any():
            return {"mapping": mapping, "source": source, "scored": held, "mapped": mapped,
                    "headline": f"held-out frames ({int(held.sum())})"}
        return {"mapping": mapping, "source": source, "scored": mapped, "mapped": mapped,
                "headline": "mapping frames (no held-out exam)"}
    if any(lab in ("normal", "abnormal") for lab in labels) and config.select == "kidney":
        mapping = kidney_mapping_from_labels(clusters, labels, k)
        count = sum(lab in ("normal", "abnormal") for lab in labels)
        return {"mapping": mapping, "source": f"normal/abnormal labels of {count} frames", "scored": labelled,
                "mapped": None, "headline": "no organ labels: not scored"}
    return {"mapping": dict.fromkeys(range(k), UNMAPPED), "source": "none", "scored": labelled,
            "mapped": None, "headline": "no labels: not scored"}


def _train_deep(config: ClusterConfig, frames: np.ndarray, out_dir: Path) -> tuple[ClusterModel, dict]:
    """Train the two-view model on `frames` for the planned steps; the trained model and what ran."""
    torch.manual_seed(config.seed)  # weights and kornia's augmentations draw from the global generator
    module = ClusteringModule(config)
    batch, max_steps = plan_steps(len(frames), config.batch_size, config.epochs, config.min_steps)
    if config.trainer.max_steps and config.trainer.max_steps > 0:
        max_steps = config.trainer.max_steps  # an explicit budget wins (tests, resumes)
    loader = torch.utils.data.DataLoader(
        FrameDataset(frames), batch_size=batch, shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(config.seed))  # full batches: the prior needs batch means
    rng = np.random.default_rng(config.seed)
    probe = torch.from_numpy(frames[rng.choice(len(frames), min(len(frames), 512), replace=False)])
    stopper = StableAssignments(probe.unsqueeze(1).float() / 255.0, config.check_every_n_steps,
                                config.stable_fraction, config.stable_checks, config.min_steps,
                                min_used_clusters(config.clusters))
    trainer = build_trainer(replace(config.trainer, max_epochs=-1, max_steps=max_steps), out_dir,
                            callbacks=[stopper], enable_validation=False)
    if trainer.is_global_zero:
        save_yaml(config, out_dir / "config.yaml")
    fit(trainer, module, out_dir, train_dataloaders=loader)
    if not trainer.is_global_zero:
        return module.model, {}
    reason = stopper.reason if trainer.global_step < max_steps else f"step budget reached ({max_steps})"
    log.info("deep clustering: %d steps of batch %d, stopped: %s", trainer.global_step, batch, reason)
    return module.model, {"global_step": int(trainer.global_step), "stopped_because": reason,
                          "batch_size": batch}


@torch.no_grad()
def encoder_features(model: ClusterModel, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, D) L2-normalised encoder features of un-augmented frames."""
    device = next(model.parameters()).device
    model = model.eval()
    loader = torch.utils.data.DataLoader(FrameDataset(frames), batch_size=batch_size)
    feats = torch.cat([model.encoder(x.to(device)).cpu() for x in loader]).numpy()
    return feats / (np.linalg.norm(feats, axis=1, keepdims=True) + 1e-8)


@torch.no_grad()
def predict_probabilities(model: ClusterModel, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, K) cluster probabilities for un-augmented frames, on the GPU when there is one."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(FrameDataset(frames), batch_size=batch_size)
    return torch.cat([model(x.to(device)).softmax(1).cpu() for x in loader]).numpy()


def organ_metrics(true: list[str], pred: list[str], focus: str = "kidney") -> dict:
    """Per-organ precision/recall/F1/support, weighted F1 and the focus organ's F1, over labeled frames."""
    pairs = [(t, p) for t, p in zip(true, pred, strict=True) if t]
    if not pairs:
        return {}
    y_true, y_pred = [t for t, _ in pairs], [p for _, p in pairs]
    organs = sorted(set(y_true))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=organs, zero_division=0)
    per_organ = {o: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                     "f1": round(float(f[i]), 4), "support": int(s[i])} for i, o in enumerate(organs)}
    weighted = f1_score(y_true, y_pred, labels=organs, average="weighted", zero_division=0)
    return {"labeled_frames": len(pairs), "per_organ": per_organ, "weighted_f1": round(float(weighted), 4),
            f"{focus}_f1": per_organ.get(focus, {}).get("f1")}


def _checked_ids(dataset: Dataset, image_ids: list[str] | None) -> list[str]:
    known = set(dataset.images["image_id"])
    ids = dataset.images["image_id"].tolist() if image_ids is None else list(image_ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise InputError(f"{len(unknown)} image id(s) not in the dataset, e.g. '{unknown[0]}'",
                         field="image_id")
    if len(ids) < 2:
        raise InputError(f"clustering needs at least 2 frames, got {len(ids)}", field="image_id")
    return ids


def _check_resumable(config: ClusterConfig, out_dir: Path) -> None:
    """Refuse to resume a checkpoint whose model shape differs from `config`'s."""
    saved_file = out_dir / "config.yaml"
    if not (out_dir / "checkpoints" / "last.ckpt").exists() or not saved_file.exists():
        return
    saved = to_dict(from_dict(ClusterConfig, load_yaml(saved_file), source=str(saved_file)))
    current = to_dict(config)
    changed = [f for f in MODEL_FIELDS if saved[f] != current[f]]
    if changed:
        raise InputError(f"the checkpoint here was trained with other {', '.join(changed)}; "
                         "use a new output directory", file=out_dir)
