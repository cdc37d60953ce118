"""The clustering stage: train on pixels, assign every frame, map clusters to organs, select, score."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score, precision_recall_fscore_support

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.mapping import UNMAPPED, load_mapping, mapping_from_labels, save_mapping
from usconvirt.clustering.model import ClusterModel
from usconvirt.clustering.module import ClusteringModule
from usconvirt.clustering.montage import write_montages
from usconvirt.config import from_dict, load_yaml, save_yaml, to_dict
from usconvirt.data.dataset import Dataset, load_dataset
from usconvirt.data.frames import FrameDataset, load_frames
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, write_table
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
) -> dict:
    """Train (or resume) the cluster model on `image_ids` (default: all frames) and write the stage's outputs.

    Writes out_dir/{assignments.csv, selected.csv, mapping.yaml, metrics.json, config.yaml, montages/,
    checkpoints/last.ckpt}; returns the metrics. Organ labels are read only for the mapping and metrics.
    """
    config = config or ClusterConfig()
    out_dir = Path(out_dir)
    dataset = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    _check_resumable(config, out_dir)
    ids = _checked_ids(dataset, image_ids)
    frames, ids = load_frames(dataset, config.image_size, image_ids=ids, workers=config.workers)

    torch.manual_seed(config.seed)  # weights and kornia's augmentations draw from the global generator
    module = ClusteringModule(config)
    loader = torch.utils.data.DataLoader(
        FrameDataset(frames), batch_size=min(config.batch_size, len(frames)), shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(config.seed))  # full batches: the prior needs batch means
    trainer = build_trainer(replace(config.trainer, max_epochs=config.epochs), out_dir,
                            enable_validation=False)
    if trainer.is_global_zero:
        save_yaml(config, out_dir / "config.yaml")
    started = time.perf_counter()
    fit(trainer, module, out_dir, train_dataloaders=loader)
    train_seconds = time.perf_counter() - started
    if not trainer.is_global_zero:
        return {}

    probs = predict_probabilities(module.model, frames, config.batch_size)
    clusters, confidence = probs.argmax(1), probs.max(1)
    organs = dataset.images.set_index("image_id").loc[ids, "organ"].tolist()
    if mapping_file is not None:
        mapping = load_mapping(mapping_file, config.clusters)
    elif any(organs):
        mapping = mapping_from_labels(clusters, organs, config.clusters, config.mapping)
    else:
        mapping = dict.fromkeys(range(config.clusters), UNMAPPED)
        log.warning("no organ labels: name the clusters from %s/montages in %s/mapping.yaml and rerun "
                    "with --mapping", out_dir, out_dir)
    save_mapping(mapping, out_dir / "mapping.yaml")

    assignments = pd.DataFrame({"image_id": ids, "cluster": clusters, "confidence": confidence.round(4),
                                "organ": [mapping[int(c)] for c in clusters]})
    write_table(assignments, out_dir / "assignments.csv")
    selected = assignments[assignments["organ"] == config.select] if config.select else assignments.iloc[:0]
    if config.select:
        write_table(selected, out_dir / "selected.csv")
    write_montages(frames, clusters, confidence, config.clusters, out_dir / "montages",
                   per_cluster=config.montage_frames, seed=config.seed)

    metrics = {
        "frames": len(ids),
        "selected": len(selected),
        "cluster_sizes": np.bincount(clusters, minlength=config.clusters).tolist(),
        "global_step": int(trainer.global_step),
        "train_seconds": round(train_seconds, 2),
        **organ_metrics(organs, assignments["organ"].tolist(), config.select or "kidney"),
    }
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    log.info("clustering: %d frames, %d selected, weighted F1 %s, kidney F1 %s", len(ids), len(selected),
             metrics.get("weighted_f1"), metrics.get("kidney_f1"))
    return metrics


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
