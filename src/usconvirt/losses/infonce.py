"""ConVIRT's lambda-weighted bidirectional InfoNCE over cosine similarities (section 4.2 of the paper,
Dadoun et al., ISBI 2023; Zhang et al.'s ConVIRT, MLHC 2022).

The similarities and the softmax are computed in float32 even under bf16/fp16 autocast: with tau = 0.1
logits span +-10, and bf16 keeps 8 bits of mantissa, which is too coarse for a log-sum-exp over a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32; float32 and float64 unchanged."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75,
                 ) -> torch.Tensor:
    """lam * image->text + (1 - lam) * text->image InfoNCE, each the mean over its rows; row i of both
    embeddings is a pair, every other row of the batch a negative."""
    if img_emb.dim() != 2 or img_emb.shape != txt_emb.shape:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    with torch.autocast(device_type=img_emb.device.type, enabled=False):
        images = F.normalize(_at_least_fp32(img_emb), dim=1)
        logits = images @ F.normalize(_at_least_fp32(txt_emb), dim=1).T / tau
        targets = torch.arange(len(logits), device=logits.device)
        image_to_text = F.cross_entropy(logits, targets)  # each image picks its text among all texts
        text_to_image = F.cross_entropy(logits.T, targets)  # each text, its image
        return lam * image_to_text + (1.0 - lam) * text_to_image

