"""Clustering without training (scikit-learn, scikit-image): k-means on pixel features and on an
encoder's features.

The default ("texture") features are built to vary with the organ, not with the scanner or the
sonographer: histograms of oriented gradients (block-normalised, so gain-free), each frame's pixels
standardised on their own (gain, dynamic range) and lightly blurred (speckle), histograms of local
binary patterns (speckle texture; unchanged by gain, and by monotonic grey maps up to ties) and a
small weight of intensity statistics. Pixel and gradient blocks are reduced by PCA fitted on the
clustered frames only. "robust" is the same without the texture histograms (the default before).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from usconvirt.clustering.config import FEATURES


def standardised_pixels(frames: np.ndarray, blur_px: float = 1.0) -> np.ndarray:
    """(N, S*S) float32: each frame blurred, then zero mean and unit variance over its own pixels."""
    x = frames.astype(np.float32) / 255.0
    if blur_px > 0:
        x = ndimage.gaussian_filter(x, (0, blur_px, blur_px), truncate=2.5)
    x = x.reshape(len(x), -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True) + 1e-6
    return x


def kmeans(features: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (N,) and (N, K) soft assignments (softmax of negative squared distances, scaled by the
    median distance to the nearest centroid); K is capped by the number of frames."""
    return kmeans_predict(features, features, k, seed, n_init)


# the plain pixel baseline: frames shrunk to 32 px, 50 principal components, no row normalisation; on
# real organ crops it beat every learned feature space (docs/clustering.md), so it is always a candidate
PLAIN_SIZE = 32
PLAIN_DIMS = 50
LBP_RADII = (1, 2)  # px at image_size: speckle grain at 64-96 px
LBP_POINTS = 8


def intensity_stats(frames: np.ndarray) -> np.ndarray:
    """(N, 5) mean, sd and 10/50/90th percentiles of each frame: echogenicity, which crops need."""
    x = frames.reshape(len(frames), -1).astype(np.float32) / 255.0
    return np.column_stack([x.mean(1), x.std(1), *np.percentile(x, [10, 50, 90], axis=1)])


def lbp_histograms(frames: np.ndarray, radii: tuple[int, ...] = LBP_RADII,
                   points: int = LBP_POINTS) -> np.ndarray:
    """(N, len(radii) * (points + 2)) shares of rotation-invariant uniform local binary patterns
    (scikit-image): the speckle's texture, whatever the gain (and the grey map, up to ties)."""
    from skimage.feature import local_binary_pattern

    out = np.zeros((len(frames), len(radii) * (points + 2)), np.float32)
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        for j, radius in enumerate(radii):
            codes = local_binary_pattern(frame, points, radius, "uniform").astype(np.int64)
            out[i, j * (points + 2):(j + 1) * (points + 2)] = np.bincount(
                codes.ravel(), minlength=points + 2) / codes.size
    return out


def shrunk_pixels(frames: np.ndarray, size: int = PLAIN_SIZE) -> np.ndarray:
    """(N, size*size) float32 in [0, 1]: each frame resized to size x size (PIL bilinear, antialiased)."""
    from PIL import Image

    if frames.shape[-1] > size:
        frames = np.stack([np.asarray(Image.fromarray(np.asarray(f)).resize((size, size), Image.BILINEAR))
                           for f in frames])
    return frames.reshape(len(frames), -1).astype(np.float32) / 255.0


def hog_features(frames: np.ndarray, cell: int) -> np.ndarray:
    """Histograms of oriented gradients (scikit-image), block-normalised, so gain does not change them."""
    from skimage.feature import hog

    cell = max(2, min(cell, frames.shape[-1] // 2))
    return np.stack([hog(f, orientations=8, pixels_per_cell=(cell, cell), cells_per_block=(2, 2))
                     for f in frames]).astype(np.float32)


def feature_blocks(frames: np.ndarray, kind: str, blur_px: float) -> list[tuple[np.ndarray, bool, float]]:
    """(matrix, reduce by PCA, weight) per block of the feature space `kind`.

    robust: HOG at two cell sizes (shape, gain-free), standardised blurred pixels (layout), and intensity
    statistics at half weight (echogenicity: helps crops of homogeneous organs, hurts across scanners
    when it weighs as much as the rest; bench/cluster_methods.py). texture: robust and local binary
    pattern histograms at half weight (speckle texture, docs/clustering.md). pixels: standardised
    pixels only. raw: unnormalised pixels. pca32: the plain baseline, pixels at 32 px whose principal
    components are used as they are (weight 0: no row normalisation).
    """
    size = frames.shape[-1]
    if kind == "raw":
        return [(frames.reshape(len(frames), -1).astype(np.float32) / 255.0, True, 1.0)]
    if kind == "pca32":
        return [(shrunk_pixels(frames), True, 0.0)]
    pixels = (standardised_pixels(frames, blur_px), True, 1.0)
    if kind == "pixels":
        return [pixels]
    if kind not in ("robust", "texture"):
        raise ValueError(f"unknown features '{kind}', expected one of {', '.join(FEATURES)}")
    blocks = [(hog_features(frames, size // 8), True, 1.0), (hog_features(frames, size // 4), True, 1.0),
              pixels, (intensity_stats(frames), False, 0.5)]
    if kind == "texture":
        blocks.append(texture_block(frames))
    return blocks


def texture_block(frames: np.ndarray) -> tuple[np.ndarray, bool, float]:
    """The block that `texture` adds to `robust`: local binary pattern histograms at half weight."""
    return lbp_histograms(frames), False, 0.5


def fit_block_transforms(train_blocks: list[tuple[np.ndarray, bool, float]], dims: int = 48,
                         seed: int = 0) -> list[dict[str, np.ndarray]]:
    """The fitted transform of each block, as plain arrays (saved with the organ model): PCA mean and
    components for reduced blocks, mean, sd and scale for the others. A reduced block of weight 0 keeps
    its principal components unscaled (plain PCA)."""
    fitted = []
    for x, reduce, weight in train_blocks:
        if reduce:
            d = max(1, min(dims, len(x) - 1, x.shape[1]))
            pca = PCA(n_components=d, random_state=seed, svd_solver="randomized").fit(x)
            fitted.append({"mean": pca.mean_.astype(np.float32),
                           "components": pca.components_.astype(np.float32),
                           "weight": np.float32([weight])})
        else:
            mean, sd = x.mean(0), x.std(0) + 1e-6
            scale = weight / (np.linalg.norm((x - mean) / sd, axis=1).mean() + 1e-8)
            fitted.append({"mean": mean.astype(np.float32), "sd": sd.astype(np.float32),
                           "scale": np.float32([scale])})
    return fitted


def apply_block_transforms(blocks: list[tuple[np.ndarray, bool, float]],
                           fitted: list[dict[str, np.ndarray]]) -> np.ndarray:
    """(N, D) features: each block projected by its fitted transform, reduced rows scaled to unit norm
    times the block's weight (weight 0: left as they are), the whole divided by sqrt(#blocks). Train and
    new frames go through this one function, so a saved model reproduces the stage's features exactly."""
    out = []
    for (x, _, _), f in zip(blocks, fitted, strict=True):
        if "components" in f:
            z = (x - f["mean"]) @ f["components"].T
            if f["weight"][0] > 0:
                z = f["weight"][0] * z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-8)
        else:
            z = (x - f["mean"]) / f["sd"] * f["scale"][0]
        out.append(z.astype(np.float32))
    return np.concatenate(out, 1) / np.float32(np.sqrt(len(fitted)))


def fit_features(train: np.ndarray, frames: np.ndarray | None, kind: str = "texture", dims: int = 48,
                 blur_px: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features of `train` frames and of `frames` (default: the train frames), every transform fitted on
    `train` only: per block PCA (or standardisation), rows scaled to unit norm times the block's weight."""
    train_blocks = feature_blocks(train, kind, blur_px)
    fitted = fit_block_transforms(train_blocks, dims, seed)
    z_train = apply_block_transforms(train_blocks, fitted)
    if frames is None:
        return z_train, z_train
    return z_train, apply_block_transforms(feature_blocks(frames, kind, blur_px), fitted)


def fit_kmeans(train: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> tuple[np.ndarray, float]:
    """Centroids (min(k, N), D) of k-means on `train`, and the softmax temperature of soft_assign: the
    median squared distance of a train point to its nearest centroid."""
    model = KMeans(n_clusters=max(1, min(k, len(train))), n_init=n_init, random_state=seed).fit(train)
    centroids = model.cluster_centers_.astype(np.float32)
    return centroids, float(np.median(squared_distances(train, centroids).min(axis=1))) + 1e-8


def squared_distances(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(N, K) squared Euclidean distances, in float64 (the expansion cancels badly in float32)."""
    f, c = features.astype(np.float64), centroids.astype(np.float64)
    return np.maximum((f ** 2).sum(1)[:, None] - 2 * f @ c.T + (c ** 2).sum(1)[None], 0.0)


def soft_assign(features: np.ndarray, centroids: np.ndarray, scale: float,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-centroid ids (N,) and (N, k) softmax of negative squared distances over `scale`; columns
    past the number of centroids are zero."""
    d2 = squared_distances(features, centroids)
    logits = -d2 / scale
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    full = np.zeros((len(features), k), np.float32)
    full[:, : len(centroids)] = probs
    return d2.argmin(axis=1).astype(np.int64), full


def kmeans_predict(train: np.ndarray, features: np.ndarray, k: int, seed: int = 0,
                   n_init: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """k-means fitted on `train` features, nearest-centroid ids and soft assignments for `features`."""
    centroids, scale = fit_kmeans(train, k, seed, n_init)
    return soft_assign(features, centroids, scale, k)
