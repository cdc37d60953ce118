"""The clustering stage's configuration: one dataclass, saved beside its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from usconvirt.data.schema import ORGANS
from usconvirt.models.config import ImageEncoderConfig
from usconvirt.training.config import TrainerConfig

# chosen on real organ crops and on synthetic corpora (docs/clustering.md): the plain baseline and K
# around it, and the scanner-robust features that won on synthetic frames, at the K that suited each
CANDIDATES = ("pca32:12", "pca32:24", "pca32:48", "robust:24", "robust:48", "texture:48")


@dataclass
class ClusterConfig:
    """`select` (an organ, or None) writes selected.csv. `method` (docs/clustering.md): kmeans (default,
    k-means on scanner-robust pixel and texture features), deep (two-view Dirichlet clustering),
    deep-from-kmeans (the deep head starts from k-means centroids of the encoder's features)."""

    method: Literal["kmeans", "deep", "deep-from-kmeans"] = "kmeans"
    # k-means candidates "FEATURES:K", fitted on the frames to cluster; the one that names the labelled
    # frames best, cross-validated over exams, is used (clustering/selection.py). The plain pixel baseline
    # pca32:12 is always one and is used when no label can score them. Empty: `features` and `clusters`.
    candidates: tuple[str, ...] = CANDIDATES
    selection_folds: int = 5  # exams dealt into this many folds to score a candidate
    selection_repeats: int = 3  # dealings averaged
    selection_margin: float = 0.02  # another candidate must beat the baseline's score by more than this
    clusters: int = 48  # K with candidates empty, and of deep clustering; over-clustering helps
    # k-means features: texture (HOG + standardised pixels + intensity + local binary patterns), robust
    # (the same without local binary patterns), pixels (standardised), raw (plain PCA of the pixels),
    # pca32 (plain PCA of 32 px pixels, 50 components: the baseline)
    features: str = "texture"
    min_frames_per_cluster: int = 5  # k-means uses at most frames/5 clusters: few frames, fewer clusters
    pixel_dims: int = 48  # PCA components per feature block
    pixel_blur_px: float = 1.0  # Gaussian blur before PCA, in pixels at image_size: averages speckle out
    # deep schedule: epochs, but never fewer than min_steps optimisation steps, stopped early once the
    # assignments of a fixed probe set stay stable between checks (and enough clusters are used)
    epochs: int = 30
    min_steps: int = 600
    check_every_n_steps: int = 50
    stable_fraction: float = 0.005  # at most this share of probe frames changing cluster counts as stable
    stable_checks: int = 3
    image_size: int = 96
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    alpha: float = 2.0  # symmetric Dirichlet concentration of the cluster-size prior
    consistency_weight: float = 1.0
    prior_weight: float = 1.0
    entropy_weight: float = 0.0
    encoder: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="tiny"))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # auto (hungarian when K == #organs, else majority), majority, hungarian
    mapping: Literal["auto", "majority", "hungarian"] = "auto"
    select: str | None = field(default="kidney", metadata={"choices": ORGANS})
    map_fraction: float = 0.7  # labelled frames (by exam) that name clusters; the rest are scored
    min_select_share: float = 0.05  # fewer selected frames than this share of all frames: a warning
    max_cluster_share: float = 0.5  # one cluster holding more than this share of frames: a warning
    strict: bool = False  # the warnings above become errors
    montage_frames: int = 16
    workers: int = 1  # frame preprocessing processes
    seed: int = 0


METHODS = ("kmeans", "deep", "deep-from-kmeans")
