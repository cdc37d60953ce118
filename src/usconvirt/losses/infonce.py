"""ConVIRT's lambda-weighted bidirectional InfoNCE over cosine similarities (PAPER.md section 4.2).

With `groups`, rows of one group (the frames of one exam, which share their exam's sentences) are all
positives of each other: each row's loss is -log of the softmax mass on its positives (the multi-positive
InfoNCE of Khosla et al.'s SupCon, "L_out" form, summed inside the log), rather than counting a text of
the same exam as a negative. Without `groups` it is exactly ConVIRT's loss.

With `text_owner`, an image has several texts (its exam's sentences, one per row of `txt_emb`) and any
of them may be the one that describes it: the image's positive mass is summed over its own texts, as in
MIL-NCE (Miech et al., CVPR 2020), so a frame of a normal left kidney can match "rein gauche normal"
while a frame of the same exam showing a right cyst matches the cyst's sentence. Each text picks its
image among all images. Rows of `text_valid` False (padding) take no part.

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


def _positives(n_images: int, groups: torch.Tensor | None, text_owner: torch.Tensor | None,
               device: torch.device) -> torch.Tensor | None:
    """(images, texts) mask of positive pairs; None for the plain diagonal."""
    if groups is None and text_owner is None:
        return None
    owner = torch.arange(n_images, device=device) if text_owner is None else text_owner.to(device)
    if groups is None:
        return torch.arange(n_images, device=device).view(-1, 1) == owner.view(1, -1)
    groups = groups.to(device)
    return groups.view(-1, 1) == groups[owner].view(1, -1)


def convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75,
                 groups: torch.Tensor | None = None, text_owner: torch.Tensor | None = None,
                 text_valid: torch.Tensor | None = None) -> torch.Tensor:
    """lam * image->text + (1 - lam) * text->image InfoNCE, each the mean over its rows.

    Without `text_owner`, row i of both embeddings is a pair. With it, `txt_emb` row j belongs to image
    `text_owner[j]` (MIL-NCE, see the module docstring) and `text_valid` may mask padding rows out.
    """
    if img_emb.dim() != 2 or txt_emb.dim() != 2 or img_emb.shape[1] != txt_emb.shape[1]:
        raise ValueError(f"expected (N, d) and (M, d) embeddings, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    if text_owner is None and img_emb.shape != txt_emb.shape:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    if text_owner is not None and len(text_owner) != len(txt_emb):
        raise ValueError(f"{len(text_owner)} text owners for {len(txt_emb)} texts")
    if text_valid is not None and text_owner is None:
        raise ValueError("text_valid needs text_owner")
    with torch.autocast(device_type=img_emb.device.type, enabled=False):
        images = F.normalize(_at_least_fp32(img_emb), dim=1)
        logits = images @ F.normalize(_at_least_fp32(txt_emb), dim=1).T / tau
        positives = _positives(len(images), groups, text_owner, logits.device)
        if text_valid is not None:
            valid = text_valid.to(logits.device).bool()
            logits, positives = logits[:, valid], positives[:, valid]
        image_to_text = _infonce(logits, positives)  # each image picks its text(s) among all texts
        text_to_image = _infonce(logits.T, None if positives is None else positives.T)  # each text, its image
        return lam * image_to_text + (1.0 - lam) * text_to_image
