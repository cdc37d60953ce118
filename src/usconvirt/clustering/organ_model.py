"""The fitted k-means organ model of the clustering stage, saved so that export ships it instead of
refitting it.

It holds the feature recipe (which blocks, PCA dims, blur, seed, frame size) and the fitted arrays (per
block PCA mean and components or standardisation, the k-means centroids and the softmax temperature).
`assign` recomputes the features with the very functions of baselines.py, so it reproduces the stage's
assignments.csv. Files: DIR/recipe.json and DIR/arrays.safetensors (numpy, no torch).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from usconvirt.clustering.baselines import (
    apply_block_transforms,
    feature_blocks,
    fit_block_transforms,
    fit_kmeans,
    soft_assign,
)
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, read_json, reading

Blocks = list[tuple[np.ndarray, bool, float]]  # baselines.feature_blocks of some frames
MODEL_DIR = "organ_model"  # inside the clustering output directory
RECIPE = "recipe.json"
ARRAYS = "arrays.safetensors"


@dataclass(frozen=True)
class FeatureRecipe:
    """How frames become features: baselines.feature_blocks(kind, blur_px), PCA to `dims` per block."""

    kind: str = "texture"
    dims: int = 48
    blur_px: float = 1.0
    seed: int = 0
    image_size: int = 96


@dataclass
class OrganModel:
    """k-means over fitted features of (N, S, S) uint8 frames at `recipe.image_size`."""

    recipe: FeatureRecipe
    blocks: list[dict[str, np.ndarray]]  # baselines.fit_block_transforms
    centroids: np.ndarray  # (k fitted, D)
    scale: float  # softmax temperature of baselines.soft_assign
    clusters: int  # K of the stage: probabilities have K columns, those past the fitted k are zero

    def features(self, frames: np.ndarray) -> np.ndarray:
        self._check_size(frames)
        return apply_block_transforms(feature_blocks(frames, self.recipe.kind, self.recipe.blur_px),
                                      self.blocks)

    def soft_assign(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster ids (N,) and (N, K) cluster probabilities."""
        self._check_size(frames)
        return self.soft_assign_blocks(feature_blocks(frames, self.recipe.kind, self.recipe.blur_px))

    def soft_assign_blocks(self, blocks: Blocks) -> tuple[np.ndarray, np.ndarray]:
        """soft_assign of frames whose baselines.feature_blocks are already computed."""
        return soft_assign(apply_block_transforms(blocks, self.blocks), self.centroids, self.scale,
                           self.clusters)

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        return self.soft_assign(frames)[1]

    def assign(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cluster ids (N,) and the probability of that cluster (the stage's `confidence`)."""
        ids, probs = self.soft_assign(frames)
        return ids, probs[np.arange(len(ids)), ids]

    def _check_size(self, frames: np.ndarray) -> None:
        size = self.recipe.image_size
        if frames.ndim != 3 or frames.shape[1:] != (size, size):
            raise ValueError(f"the k-means organ model takes (N, {size}, {size}) frames, got {frames.shape}")


def fit_organ_model(blocks: Blocks, n: int, k: int, clusters: int, recipe: FeatureRecipe) -> OrganModel:
    """Fit the feature transforms and k-means (`k` centroids) on the first `n` rows of the feature
    `blocks` of frames (the frames to cluster; rows after them only name clusters)."""
    train_blocks = [(x[:n], reduce, weight) for x, reduce, weight in blocks]
    fitted = fit_block_transforms(train_blocks, recipe.dims, recipe.seed)
    centroids, scale = fit_kmeans(apply_block_transforms(train_blocks, fitted), k, recipe.seed)
    return OrganModel(recipe, fitted, centroids, scale, clusters)


def save_organ_model(model: OrganModel, directory: str | Path) -> Path:
    """Write DIR/recipe.json and DIR/arrays.safetensors (each atomically); return DIR."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"centroids": np.ascontiguousarray(model.centroids)}
    for i, block in enumerate(model.blocks):
        arrays |= {f"block{i}.{name}": np.ascontiguousarray(a) for name, a in block.items()}
    meta = {"recipe": asdict(model.recipe), "blocks": len(model.blocks), "scale": model.scale,
            "clusters": model.clusters}
    with atomic_path(directory / ARRAYS) as tmp:
        save_file(arrays, str(tmp))
    with atomic_path(directory / RECIPE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return directory


def load_organ_model(directory: str | Path) -> OrganModel:
    """The model saved in `directory`, or in `directory`/organ_model (a clustering output directory)."""
    directory = Path(directory)
    if not (directory / RECIPE).is_file() and (directory / MODEL_DIR / RECIPE).is_file():
        directory = directory / MODEL_DIR
    for name in (RECIPE, ARRAYS):
        if not (directory / name).is_file():
            raise InputError("k-means organ model is missing (rerun the cluster stage: runs made before "
                             "it was saved keep none)", file=directory / name)
    with reading(directory / RECIPE, "organ model recipe"):
        meta = read_json(directory / RECIPE, "organ model recipe")
        recipe, blocks_count = FeatureRecipe(**meta["recipe"]), int(meta["blocks"])
        scale, clusters = float(meta["scale"]), int(meta["clusters"])
    with reading(directory / ARRAYS, "organ model arrays"):
        arrays = load_file(str(directory / ARRAYS))
        centroids = arrays["centroids"]
    blocks = []
    for i in range(blocks_count):
        prefix = f"block{i}."
        blocks.append({k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)})
    return OrganModel(recipe, blocks, centroids, scale, clusters)
