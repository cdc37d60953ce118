"""The organ model a bundle carries: whatever the clustering stage fitted, and its cluster-to-organ map.

Two kinds, one interface (`probabilities` of (N, S, S) uint8 frames -> (N, K)):
- `deep`: the deep clustering stage's encoder and softmax head (method deep), from its
  checkpoint; exported to ONNX too.
- `pixel_kmeans`: k-means on the stage's scanner-robust features (method kmeans), the very model the stage
  saved in cluster/organ_model/ (clustering/organ_model.py, numpy, no ONNX); export copies it and checks
  that it reproduces the stage's assignments.csv on the run's frames.
A frame's organ is the organ of its most probable cluster, as in the stage's selection; organ_confidence
is the summed probability of every cluster mapped to that organ (over-clustering splits an organ).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from usconvirt.clustering.organ_model import OrganModel as KMeansModel
from usconvirt.clustering.organ_model import load_organ_model as load_kmeans_model
from usconvirt.clustering.organ_model import save_organ_model as save_kmeans_model
from usconvirt.errors import InputError
from usconvirt.io import read_json, reading
from usconvirt.models.image_encoder import ImageEncoder, load_image_encoder, save_image_encoder
from usconvirt.models.inference import frames_on_device, low_precision
from usconvirt.run_layout import ASSIGNMENTS, CLUSTER_MAPPING

log = logging.getLogger(__name__)

CONFIG = "organ_model.json"
HEAD = "head.safetensors"
KMEANS_DIR = "kmeans"  # clustering/organ_model.py's files, as the cluster stage saved them
MIN_AGREEMENT = 0.999  # the same model on the same frames: only float ties may flip an assignment


class OrganMap:
    """Cluster-to-organ naming shared by both kinds."""

    kind = ""
    mapping: dict[int, str]
    image_size: int
    select: str

    def probabilities(self, frames: np.ndarray, device: torch.device | None = None) -> np.ndarray:
        raise NotImplementedError

    def organs(self, probs: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Organ of each frame's most probable cluster, and the summed probability of that organ."""
        names = np.array([self.mapping.get(c, "") for c in range(probs.shape[1])], dtype=object)
        organ = names[probs.argmax(1)]
        confidence = np.array([probs[i, names == o].sum() for i, o in enumerate(organ)], dtype=float)
        return organ.tolist(), confidence


class DeepOrganModel(nn.Module, OrganMap):
    """Grayscale (B, 1, S, S) in [0, 1] -> (B, K) cluster probabilities."""

    kind = "deep"

    def __init__(self, encoder: ImageEncoder, head: nn.Linear, mapping: dict[int, str], image_size: int,
                 select: str = "kidney") -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.mapping, self.image_size, self.select = mapping, image_size, select

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images)).softmax(1)

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray, device: torch.device | None = None) -> np.ndarray:
        device = device or torch.device("cpu")
        model = self.to(device).eval()
        with low_precision(device):
            return model(frames_on_device(frames, device)).float().cpu().numpy()


class PixelKMeansOrganModel(OrganMap):
    """The clustering stage's fitted k-means (clustering/organ_model.py) with its cluster-to-organ map."""

    kind = "pixel_kmeans"

    def __init__(self, model: KMeansModel, mapping: dict[int, str], select: str = "kidney") -> None:
        self.model, self.mapping, self.select = model, mapping, select
        self.image_size = model.recipe.image_size

    def probabilities(self, frames: np.ndarray, device: torch.device | None = None) -> np.ndarray:
        return self.model.probabilities(frames)


def organ_model_from_run(cluster_dir: str | Path, dataset_dir: Path | None) -> OrganMap:
    """The organ model of a clustering stage output (config.yaml, mapping.yaml, and its method's state)."""
    from usconvirt.clustering.config import ClusterConfig
    from usconvirt.clustering.mapping import load_mapping
    from usconvirt.config import from_dict, load_yaml

    cluster_dir = Path(cluster_dir)
    for name in ("config.yaml", CLUSTER_MAPPING):
        if not (cluster_dir / name).is_file():
            raise InputError("clustering output is missing (run the cluster stage)", file=cluster_dir / name)
    saved = load_yaml(cluster_dir / "config.yaml")
    config = from_dict(ClusterConfig, saved, source=str(cluster_dir))
    mapping = load_mapping(cluster_dir / CLUSTER_MAPPING, config.clusters)
    select = config.select or "kidney"
    if saved.get("method", "deep") == "kmeans":  # configs saved before k-means existed were deep
        return _saved_pixel_kmeans(cluster_dir, mapping, select, dataset_dir)
    from usconvirt.clustering.model import ClusterModel

    checkpoint = cluster_dir / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise InputError("clustering checkpoint is missing (run the cluster stage)", file=checkpoint)
    model = ClusterModel(config.encoder, config.clusters)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()
                           if k.startswith("model.")})
    return DeepOrganModel(model.encoder, model.head, mapping, config.image_size, select).eval()


def _saved_pixel_kmeans(cluster_dir: Path, mapping: dict[int, str], select: str,
                       dataset_dir: Path | None) -> PixelKMeansOrganModel:
    """The stage's saved k-means, checked against its assignments.csv when the run's frames are there."""
    from usconvirt.data import load_dataset
    from usconvirt.data.frames import load_frames
    from usconvirt.io import read_table

    model = PixelKMeansOrganModel(load_kmeans_model(cluster_dir), mapping, select)
    if dataset_dir is None:
        log.warning("no dataset in the run: the k-means organ model is shipped unchecked")
        return model
    assignments = read_table(cluster_dir / ASSIGNMENTS)
    frames, _ = load_frames(load_dataset(dataset_dir), model.image_size,
                            image_ids=assignments["image_id"].tolist())
    agreement = float((model.model.assign(frames)[0] == assignments["cluster"].astype(int)).mean())
    if agreement < MIN_AGREEMENT:
        raise InputError(f"the saved k-means organ model reproduces only {agreement:.2%} of the stage's "
                         "cluster assignments (frames or code changed since the cluster stage ran?)",
                         file=cluster_dir / ASSIGNMENTS)
    return model


def save_organ_model(model: OrganMap, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"kind": model.kind, "image_size": model.image_size, "select": model.select,
              "mapping": {str(c): o for c, o in sorted(model.mapping.items())}}
    if isinstance(model, DeepOrganModel):
        save_image_encoder(model.encoder, directory / "encoder")
        save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, directory / HEAD)
        config["clusters"] = model.head.out_features
    else:
        save_kmeans_model(model.model, directory / KMEANS_DIR)
        config["clusters"] = model.model.clusters
    (directory / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory


def load_organ_model(directory: str | Path) -> OrganMap:
    directory = Path(directory)
    with reading(directory / CONFIG, "organ model file"):
        config = read_json(directory / CONFIG, "organ model file")
        mapping = {int(c): o for c, o in config["mapping"].items()}
        size, select, clusters = int(config["image_size"]), config["select"], int(config["clusters"])
    if config.get("kind", "deep") == "pixel_kmeans":
        return PixelKMeansOrganModel(load_kmeans_model(directory / KMEANS_DIR), mapping, select)
    encoder = load_image_encoder(directory / "encoder")
    head = nn.Linear(encoder.out_dim, clusters)
    with reading(directory / HEAD, "organ model head"):
        head.load_state_dict(load_file(directory / HEAD))
    return DeepOrganModel(encoder, head, mapping, size, select).eval()
