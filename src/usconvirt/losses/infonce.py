"""ConVIRT's lambda-weighted bidirectional InfoNCE over cosine similarities (section 4.2 of the paper,
Dadoun et al., ISBI 2023; Zhang et al.'s ConVIRT, MLHC 2022).

The similarities and the softmax are computed in float32 even under bf16/fp16 autocast: with tau = 0.1
logits span +-10, and bf16 keeps 8 bits of mantissa, which is too coarse for a log-sum-exp over a batch.

With `text_keys`, texts of equal key are equivalent (training/equivalent_texts.py): an image's target is
spread evenly over its own text and every equivalent one of the batch, and a text's over their images
(soft targets, as MedCLIP's semantic matching; the cross-entropy against them is the supervised-
contrastive multi-positive form). When every key differs the targets are one-hot: ConVIRT's loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32; float32 and float64 unchanged."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def equivalent_targets(text_keys: torch.Tensor) -> torch.Tensor:
    """(..., N, N) soft targets from (..., N) keys: row i uniform over the j whose key equals i's."""
    same = (text_keys.unsqueeze(-1) == text_keys.unsqueeze(-2)).float()
    return same / same.sum(-1, keepdim=True)


def equivalent_negatives(text_keys: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(equivalent, all) in-batch negatives: ordered pairs i != j of each row of (..., N) keys, and those
    whose texts are equivalent (a tensor, so that counting every step costs no device sync)."""
    n = text_keys.shape[-1]
    same = (text_keys.unsqueeze(-1) == text_keys.unsqueeze(-2)).sum()
    return same - text_keys.numel(), text_keys.numel() * (n - 1)


def convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75,
                 text_keys: torch.Tensor | None = None) -> torch.Tensor:
    """lam * image->text + (1 - lam) * text->image InfoNCE, each the mean over its rows; row i of both
    embeddings is a pair, every other row of the batch a negative (but equivalent texts, with `text_keys`)."""
    if img_emb.dim() != 2 or img_emb.shape != txt_emb.shape:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    with torch.autocast(device_type=img_emb.device.type, enabled=False):
        images = F.normalize(at_least_fp32(img_emb), dim=1)
        logits = images @ F.normalize(at_least_fp32(txt_emb), dim=1).T / tau
        targets = (torch.arange(len(logits), device=logits.device) if text_keys is None
                   else equivalent_targets(text_keys.to(logits.device)))  # symmetric: both directions
        image_to_text = F.cross_entropy(logits, targets)  # each image picks its text among all texts
        text_to_image = F.cross_entropy(logits.T, targets)  # each text, its image
        return lam * image_to_text + (1.0 - lam) * text_to_image

