"""The clustering stage's configuration: one dataclass, saved beside its outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from usconvirt.config import COUNT, NOT_NEGATIVE, SHARE
from usconvirt.data.schema import ORGANS
from usconvirt.errors import InputError
from usconvirt.models.config import ImageEncoderConfig
from usconvirt.training.config import TrainerConfig

# chosen on real organ crops and on synthetic corpora (docs/clustering.md): the plain baseline and K
# around it, and the scanner-robust features that won on synthetic frames, at the K that suited each
CANDIDATES = ("pca32:12", "pca32:24", "pca32:48", "robust:24", "robust:48", "texture:48")
FEATURES = ("texture", "robust", "pixels", "raw", "pca32")  # k-means feature spaces: baselines.py


def candidate_spec(spec: str) -> tuple[str, int]:
    """A k-means candidate 'FEATURES:K' -> (features, K), or a ValueError naming it and the form expected."""
    features, _, k = str(spec).partition(":")
    if features not in FEATURES or not k.isdigit() or int(k) < 2:
        raise ValueError(f"candidate '{spec}': expected FEATURES:K with FEATURES one of "
                         f"{', '.join(FEATURES)} and K >= 2")
    return features, int(k)


@dataclass
class ClusterConfig:
    """`select` (an organ, or None) writes selected.csv. `method` (docs/clustering.md): kmeans (default,
    k-means on scanner-robust pixel and texture features), deep (two-view Dirichlet clustering)."""

    method: Literal["kmeans", "deep"] = "kmeans"
    # k-means candidates "FEATURES:K", fitted on the frames to cluster; the one that names the labelled
    # frames best, cross-validated over exams, is used (clustering/selection.py). The plain pixel baseline
    # pca32:12 is always one and is used when no label can score them. Empty: `features` and `clusters`.
    candidates: tuple[str, ...] = CANDIDATES
    # exams dealt into this many folds to score a candidate
    selection_folds: int = field(default=5, metadata={"range": "[2, inf)"})
    selection_repeats: int = field(default=3, metadata={"range": COUNT})  # dealings averaged
    selection_margin: float = 0.02  # another candidate must beat the baseline's score by more than this
    # K with candidates empty, and of deep clustering; over-clustering helps
    clusters: int = field(default=48, metadata={"range": "[2, inf)"})
    # k-means features: texture (HOG + standardised pixels + intensity + local binary patterns), robust
    # (the same without local binary patterns), pixels (standardised), raw (plain PCA of the pixels),
    # pca32 (plain PCA of 32 px pixels, 50 components: the baseline)
    features: str = field(default="texture", metadata={"choices": FEATURES})
    # k-means uses at most frames/5 clusters: few frames, fewer clusters
    min_frames_per_cluster: int = field(default=5, metadata={"range": COUNT})
    pixel_dims: int = field(default=48, metadata={"range": COUNT})  # PCA components per feature block
    # Gaussian blur before PCA, in pixels at image_size: averages speckle out
    pixel_blur_px: float = field(default=1.0, metadata={"range": NOT_NEGATIVE})
    # deep schedule: epochs, but never fewer than min_steps optimisation steps, stopped early once the
    # assignments of a fixed probe set stay stable between checks (and enough clusters are used)
    epochs: int = field(default=30, metadata={"range": NOT_NEGATIVE})
    min_steps: int = field(default=600, metadata={"range": NOT_NEGATIVE})
    check_every_n_steps: int = field(default=50, metadata={"range": COUNT})
    # at most this share of probe frames changing cluster counts as stable
    stable_fraction: float = field(default=0.005, metadata={"range": SHARE})
    stable_checks: int = field(default=3, metadata={"range": COUNT})
    image_size: int = field(default=96, metadata={"range": COUNT})
    batch_size: int = field(default=128, metadata={"range": COUNT})
    lr: float = field(default=1e-3, metadata={"range": NOT_NEGATIVE})
    weight_decay: float = field(default=1e-4, metadata={"range": NOT_NEGATIVE})
    # symmetric Dirichlet concentration of the cluster-size prior
    alpha: float = field(default=2.0, metadata={"range": "(0, inf)"})
    consistency_weight: float = field(default=1.0, metadata={"range": NOT_NEGATIVE})
    prior_weight: float = field(default=1.0, metadata={"range": NOT_NEGATIVE})
    entropy_weight: float = 0.0
    encoder: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="tiny"))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # auto (hungarian when K == #organs, else majority), majority, hungarian
    mapping: Literal["auto", "majority", "hungarian"] = "auto"
    select: str | None = field(default="kidney", metadata={"choices": ORGANS})
    # labelled frames (by exam) that name clusters; the rest are scored
    map_fraction: float = field(default=0.7, metadata={"range": SHARE})
    # fewer selected frames than this share of all frames: a warning
    min_select_share: float = field(default=0.05, metadata={"range": SHARE})
    # one cluster holding more than this share of frames: a warning
    max_cluster_share: float = field(default=0.5, metadata={"range": SHARE})
    strict: bool = False  # the warnings above become errors
    montage_frames: int = field(default=16, metadata={"range": NOT_NEGATIVE})
    workers: int = field(default=1, metadata={"range": NOT_NEGATIVE})  # frame preprocessing processes
    seed: int = 0

    def check(self) -> None:
        """Every candidate reads FEATURES:K, so a misspelt one stops the run before any stage."""
        for spec in self.candidates:
            try:
                candidate_spec(spec)
            except ValueError as error:
                raise InputError(str(error), field="candidates") from None


METHODS = ("kmeans", "deep")
