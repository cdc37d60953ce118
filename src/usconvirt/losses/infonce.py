"""ConVIRT's lambda-weighted bidirectional InfoNCE over cosine similarities (PAPER.md section 4.2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, tau: float = 0.1, lam: float = 0.75,
                 ) -> torch.Tensor:
    """Mean over pairs of lam * image->text + (1 - lam) * text->image InfoNCE; row i of both is a pair."""
    if img_emb.shape != txt_emb.shape or img_emb.dim() != 2:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    logits = F.normalize(img_emb, dim=1) @ F.normalize(txt_emb, dim=1).T / tau
    targets = torch.arange(len(logits), device=logits.device)
    image_to_text = F.cross_entropy(logits, targets)  # each image picks its text among all texts
    text_to_image = F.cross_entropy(logits.T, targets)  # each text picks its image among all images
    return lam * image_to_text + (1.0 - lam) * text_to_image
