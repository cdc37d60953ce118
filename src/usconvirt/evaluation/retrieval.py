"""Beyond the paper: image-text retrieval and zero-shot normal/abnormal through the ConVIRT heads.

Retrieval works on descriptions: an image's description is its paired sentences joined in order.
Identical descriptions (common in templated reports) are merged into one candidate, so retrieving
the right wording counts as a hit whichever exam it was copied from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.data.split import exams_in
from usconvirt.errors import InputError
from usconvirt.evaluation.metrics import binary_macro_f1
from usconvirt.evaluation.representation import inference_device
from usconvirt.io import write_json
from usconvirt.models.inference import map_frames, module_device
from usconvirt.run_layout import RETRIEVAL

log = logging.getLogger(__name__)

NORMAL_PROMPTS = (
    "rein normal",
    "reins de taille normale, bien différenciés",
    "absence de dilatation des cavités pyélocalicielles",
    "pas de lithiase ni de kyste rénal",
)
ABNORMAL_PROMPTS = (
    "dilatation des cavités pyélocalicielles",
    "kyste rénal",
    "lithiase rénale",
    "rein atrophique, mal différencié",
    "masse rénale",
)


class ConvirtLike(Protocol):
    """What retrieval needs from `usconvirt.models.convirt.load_convirt`: L2-normalised embeddings."""

    image_size: int

    def encode_images(self, images: torch.Tensor) -> torch.Tensor: ...

    def encode_texts(self, texts: list[str]) -> torch.Tensor: ...


@dataclass
class RetrievalConfig:
    """Recall cut-offs, the French class prompts and the softmax temperature of zero-shot scores."""

    ks: tuple[int, ...] = (1, 5, 10)
    normal_prompts: tuple[str, ...] = NORMAL_PROMPTS
    abnormal_prompts: tuple[str, ...] = ABNORMAL_PROMPTS
    temperature: float = 0.1  # ConVIRT's tau; it changes probabilities, not rankings or AUC
    batch_size: int = 64
    image_size: int | None = None  # None: the pre-trained model's own
    cache_dir: str | None = None
    device: str = "auto"  # auto: the GPU when there is one


def heldout_pairs(dataset: Dataset, sentences: pd.DataFrame, split_df: pd.DataFrame, part: str = "test",
                  organ: str = "kidney") -> pd.DataFrame:
    """Pairs pre-training never saw: `part`'s annotated kidney frames with their exam's organ sentences."""
    exams = exams_in(split_df, part)
    organ_sentences = sentences[(sentences["organ"] == organ) & sentences["exam_id"].isin(exams)]
    texts = organ_sentences.groupby("exam_id", sort=False)["text"].agg(list)
    images = dataset.images[dataset.images["exam_id"].isin(texts.index)
                            & dataset.images["label"].isin(("normal", "abnormal"))]
    return pd.DataFrame({"image_id": images["image_id"].to_numpy(), "exam_id": images["exam_id"].to_numpy(),
                         "texts": [texts[e] for e in images["exam_id"]]})


def recall_at_k(similarity: np.ndarray, relevant: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """Fraction of queries (rows) with a relevant candidate among their k most similar columns."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), np.iinfo(np.int64).max)
    return {f"R@{k}": float(np.mean(first_hit < k)) for k in ks}


def retrieval_recalls(image_emb: np.ndarray, descriptions: Sequence[str], text_emb: np.ndarray,
                      candidates: Sequence[str], ks: Sequence[int]) -> dict[str, Any]:
    """Image-to-text and text-to-image Recall@k; `descriptions[i]` is image i's text in `candidates`."""
    relevant = np.asarray(descriptions)[:, None] == np.asarray(candidates)[None, :]
    similarity = image_emb @ text_emb.T
    return {"image_to_text": recall_at_k(similarity, relevant, ks),
            "text_to_image": recall_at_k(similarity.T, relevant.T, ks),
            "n_images": len(image_emb), "n_texts": len(text_emb)}


def zero_shot_probabilities(image_emb: np.ndarray, normal_emb: np.ndarray, abnormal_emb: np.ndarray,
                            temperature: float) -> np.ndarray:
    """P(abnormal) per image: softmax over cosine similarity to each class's mean prompt embedding."""
    classes = np.stack([normal_emb.mean(0), abnormal_emb.mean(0)])
    classes /= np.linalg.norm(classes, axis=1, keepdims=True)
    logits = image_emb @ classes.T / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp[:, 1] / exp.sum(axis=1)


def zero_shot_metrics(targets: np.ndarray, prob_abnormal: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and ROC-AUC of zero-shot predictions (AUC is NaN with one class only)."""
    pred = (prob_abnormal >= 0.5).astype(int)
    both = len(np.unique(targets)) == 2
    return {"accuracy": float(accuracy_score(targets, pred)),
            "macro_f1": binary_macro_f1(targets, pred),
            "roc_auc": float(roc_auc_score(targets, prob_abnormal)) if both else float("nan"),
            "n_images": len(targets)}


def embed_images(model: ConvirtLike, frames: np.ndarray, batch_size: int) -> np.ndarray:
    """Projected, L2-normalised image embeddings of uint8 frames (N, S, S)."""
    return map_frames(model.encode_images, frames, batch_size=batch_size, device=module_device(model))


@torch.no_grad()
def embed_texts(model: ConvirtLike, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Projected, L2-normalised text embeddings."""
    chunks = [model.encode_texts(list(texts[i:i + batch_size])) for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks).float().cpu().numpy()


def retrieval_and_zero_shot(
    dataset: Dataset,
    pairs: pd.DataFrame,
    pretrain_dir: str | Path,
    image_ids: Sequence[str],
    out_dir: str | Path,
    config: RetrievalConfig | None = None,
) -> dict[str, Any]:
    """Retrieval on the pairs of `image_ids`, zero-shot on its labeled frames; writes retrieval.json."""
    from usconvirt.models.convirt import load_convirt

    config = config or RetrievalConfig()
    model = load_convirt(pretrain_dir)
    if isinstance(model, torch.nn.Module):
        model.eval().to(inference_device(config.device))
    size = config.image_size or model.image_size
    wanted = set(image_ids)
    held_out = pairs[pairs["image_id"].isin(wanted)].reset_index(drop=True)
    labels = dataset.images.set_index("image_id")["label"]
    labeled = [i for i in image_ids if labels.get(i) in ("normal", "abnormal")]
    if held_out.empty and not labeled:
        raise InputError("no held-out pairs and no labeled kidney frames among the given images",
                         field="image_id")
    ids = list(dict.fromkeys([*held_out["image_id"], *labeled]))
    frames, _ = load_frames(dataset, size, image_ids=ids, cache_dir=config.cache_dir)
    image_emb = dict(zip(ids, embed_images(model, frames, config.batch_size), strict=True))

    result: dict[str, Any] = {"prompts": {"normal": list(config.normal_prompts),
                                          "abnormal": list(config.abnormal_prompts)}}
    if not held_out.empty:
        descriptions = [" ".join(t) for t in held_out["texts"]]
        candidates = list(dict.fromkeys(descriptions))
        result["retrieval"] = retrieval_recalls(
            np.stack([image_emb[i] for i in held_out["image_id"]]), descriptions,
            embed_texts(model, candidates, config.batch_size), candidates, config.ks)
    if labeled:
        prob = zero_shot_probabilities(np.stack([image_emb[i] for i in labeled]),
                                       embed_texts(model, config.normal_prompts, config.batch_size),
                                       embed_texts(model, config.abnormal_prompts, config.batch_size),
                                       config.temperature)
        targets = np.array([labels[i] == "abnormal" for i in labeled], dtype=int)
        result["zero_shot"] = zero_shot_metrics(targets, prob)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(result, out_dir / RETRIEVAL)
    log.info("retrieval and zero-shot written to %s", out_dir / RETRIEVAL)
    return result
