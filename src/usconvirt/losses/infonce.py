"""ConVIRT's lambda-weighted bidirectional InfoNCE over cosine similarities (PAPER.md section 4.2).

With `groups`, rows of one group (the frames of one exam, which share their exam's sentences) are all
positives of each other: each row's loss is -log of the softmax mass on its positives (the multi-positive
InfoNCE of Khosla et al.'s SupCon, "L_out" form, summed inside the log), rather than counting a text of
the same exam as a negative. Without `groups` it is exactly ConVIRT's loss.

The similarities and the softmax are computed in float32 even under bf16/fp16 autocast: with tau = 0.1
logits span +-10, and bf16 keeps 8 bits of mantissa, which is too coarse for a log-sum-exp over a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 -> float32; float32 and float64 unchanged."""
    return x.to(torch.promote_types(x.dtype, torch.float32))

def _infonce(logits: torch.Tensor, positives: torch.Tensor | None) -> torch.Tensor:
    """Mean over rows of -log(softmax mass on the row's positives); the diagonal when `positives` is None."""
    if positives is None:
        return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))
    log_prob = logits.log_softmax(dim=1)
    return -(log_prob.masked_fill(~positives, float("-inf")).logsumexp(dim=1)).mean()


def convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75,
                 groups: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pairs of lam * image->text + (1 - lam) * text->image InfoNCE; row i of both is a pair."""
    if img_emb.shape != txt_emb.shape or img_emb.dim() != 2:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    with torch.autocast(device_type=img_emb.device.type, enabled=False):
        images = F.normalize(_at_least_fp32(img_emb), dim=1)
        logits = images @ F.normalize(_at_least_fp32(txt_emb), dim=1).T / tau
        positives = None if groups is None else groups.view(-1, 1) == groups.view(1, -1)
        image_to_text = _infonce(logits, positives)  # each image picks its text among all texts
        text_to_image = _infonce(logits.T, positives)  # each text picks its image among all images
        return lam * image_to_text + (1.0 - lam) * text_to_image
