"""Representation quality without fine-tuning: t-SNE (paper Fig. 4), linear probe, kNN, silhouette.

Every measure reads the encoder's pooled features of labeled kidney frames (normal vs abnormal):
the probe and kNN are trained on the `train` part and scored on `test`; t-SNE and the silhouette use
`test` only, as the paper's Figure 4 does.

Batch-norm statistics are recomputed on the `train` frames for every initialisation before encoding:
a random encoder's running statistics are its init values (mean 0, variance 1), ImageNet's are those of
natural images and a pre-trained one's those of augmented pre-training batches; scoring each with the
statistics of the frames at hand compares the weights, not how well the stored statistics happen to fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.metrics import accuracy_score, f1_score, silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, write_json, write_table
from usconvirt.models.image_encoder import ImageEncoder, image_encoder_from
from usconvirt.models.inference import frame_batches, map_frames, module_device
from usconvirt.run_layout import REPRESENTATION, TSNE_PLOT
from usconvirt.training.finetune import labeled_frames

log = logging.getLogger(__name__)

CLASS_NAMES = ("normal", "abnormal")
# The two ends of viridis: purple for healthy kidneys, yellow for abnormal ones, as in the paper's Fig. 4.
CLASS_COLOURS = ("#440154", "#fde725")


@dataclass
class RepresentationConfig:
    """Frame size and encoder arch for 'random'; the seed drives random weights, t-SNE and the probe."""

    image_size: int = 224
    arch: str = "resnet50"  # used only for the 'random' initialisation
    batch_size: int = 64
    knn_k: int = 5
    seed: int = 0
    cache_dir: str | None = None
    device: str = "auto"  # auto: the GPU when there is one


def inference_device(name: str = "auto") -> torch.device:
    """'auto' picks the GPU when there is one: encoding thousands of frames is the slow step on real sizes."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_encoder(init: str, config: RepresentationConfig) -> ImageEncoder:
    """An initialisation as fine-tuning reads it (random, imagenet, convirt:DIR, PATH); random is seeded."""
    torch.manual_seed(config.seed)
    return image_encoder_from(str(init), config.arch)


@torch.no_grad()
def encode_frames(encoder: ImageEncoder, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Pooled features (N, D) of uint8 frames (N, S, S), in eval mode (frozen batch-norm statistics), on
    the encoder's device."""
    was_training = encoder.training
    encoder.eval()
    features = map_frames(encoder, frames, batch_size=batch_size, device=module_device(encoder),
                          empty_shape=(0, encoder.out_dim))
    encoder.train(was_training)
    return features


@torch.no_grad()
def recompute_batch_norm(encoder: ImageEncoder, frames: np.ndarray, batch_size: int = 64) -> ImageEncoder:
    """Reset every batch-norm layer's running mean/variance to the exact average over `frames`."""
    layers = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not layers or len(frames) == 0:
        return encoder
    device = module_device(encoder)
    momenta = [m.momentum for m in layers]
    encoder.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over all batches, not an exponential one
        layer.train()
    for batch in frame_batches(frames, batch_size, device):
        encoder(batch)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum
    return encoder.eval()


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 seed: int = 0) -> dict[str, float]:
    """Logistic regression on standardised frozen features; class-balanced since abnormal is rarer."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced",
                                                               random_state=seed))
    pred = probe.fit(train_x, train_y).predict(test_x)
    return {"probe_accuracy": float(accuracy_score(test_y, pred)),
            "probe_macro_f1": float(f1_score(test_y, pred, average="macro", labels=[0, 1], zero_division=0))}


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = 5) -> float:
    """Accuracy of a cosine k-nearest-neighbour vote over the training features."""
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), metric="cosine")
    return float(accuracy_score(test_y, knn.fit(train_x, train_y).predict(test_x)))


def normal_abnormal_silhouette(x: np.ndarray, y: np.ndarray) -> float:
    """Silhouette of the normal/abnormal partition in cosine distance (-1 to 1; higher separates better)."""
    if len(np.unique(y)) < 2 or len(y) < 3:
        return float("nan")
    return float(silhouette_score(x, y, metric="cosine"))


def tsne_embedding(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE with scikit-learn's defaults (paper 5.1); perplexity shrinks only below 31 points."""
    # sklearn requires perplexity < n_samples; its default of 30 is kept whenever the data allow it.
    perplexity = min(30.0, max(1.0, (len(x) - 1) / 3))
    # One OpenMP thread: the Barnes-Hut gradient is then reproducible, and on a busy machine it runs
    # 10-20x faster than oversubscribed threads (a test set of a few hundred frames takes seconds).
    with threadpool_limits(1, user_api="openmp"):
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed).fit_transform(x)


def plot_tsne(embeddings: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path,
              captions: dict[str, str] | None = None) -> Path:
    """One t-SNE panel per initialisation, side by side, coloured normal (purple) / abnormal (yellow)."""
    names = list(embeddings)
    fig = Figure(figsize=(4.2 * len(names), 4.8))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        xy, y = embeddings[name]
        for target, (label, colour) in enumerate(zip(CLASS_NAMES, CLASS_COLOURS, strict=True)):
            pts = xy[y == target]
            # A thin dark edge keeps yellow points visible on white.
            ax.scatter(pts[:, 0], pts[:, 1], s=22, c=colour, edgecolors="#333333", linewidths=0.4,
                       label=f"{label} kidney (n={len(pts)})")
        ax.set_title(name if not captions else f"{name}\n{captions[name]}", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
    fig.suptitle("t-SNE of the encoded test images")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save a figure as PNG atomically (pyplot-free Figure: no global backend state)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def representation_quality(
    dataset: Dataset,
    split_df: pd.DataFrame,
    encoders: dict[str, str],
    out_dir: str | Path,
    config: RepresentationConfig | None = None,
) -> dict[str, dict[str, float]]:
    """Probe, kNN, silhouette and t-SNE per initialisation; writes representation.{csv,json} and tsne.png."""
    config = config or RepresentationConfig()
    out_dir = Path(out_dir)
    frames_table = labeled_frames(dataset, split_df)
    train, test = (frames_table[frames_table["part"] == p].reset_index(drop=True) for p in ("train", "test"))
    for part, rows in (("train", train), ("test", test)):
        if rows["target"].nunique() < 2:
            raise InputError(f"the {part} part needs normal and abnormal kidney frames to measure "
                             "representation quality", field="label")
    ids = train["image_id"].tolist() + test["image_id"].tolist()
    frames, _ = load_frames(dataset, config.image_size, image_ids=ids, cache_dir=config.cache_dir)
    train_frames, test_frames = frames[:len(train)], frames[len(train):]
    train_y, test_y = train["target"].to_numpy(), test["target"].to_numpy()

    results: dict[str, dict[str, float]] = {}
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, spec in encoders.items():
        log.info("representation quality: %s", name)
        encoder = resolve_encoder(spec, config).to(inference_device(config.device))
        recompute_batch_norm(encoder, train_frames, config.batch_size)
        train_x = encode_frames(encoder, train_frames, config.batch_size)
        test_x = encode_frames(encoder, test_frames, config.batch_size)
        results[name] = {
            **linear_probe(train_x, train_y, test_x, test_y, config.seed),
            "knn_accuracy": knn_accuracy(train_x, train_y, test_x, test_y, config.knn_k),
            "silhouette": normal_abnormal_silhouette(test_x, test_y),
            "n_train": len(train_x),
            "n_test": len(test_x),
        }
        embeddings[name] = (tsne_embedding(test_x, config.seed), test_y)

    out_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([{"init": name, **scores} for name, scores in results.items()])
    write_table(table, out_dir / REPRESENTATION)
    write_json(results, out_dir / "representation.json")
    plot_tsne(embeddings, out_dir / TSNE_PLOT,
              {name: f"silhouette {scores['silhouette']:.2f}" for name, scores in results.items()})
    return results
