"""ConVIRT's loss over contrastive groups: a batch of G x g pairs scored as G separate g-way losses.

ConVIRT's loss (infonce.py) draws its negatives from the whole batch, so its difficulty, and its chance
level ln(batch), grow with the batch: a physical batch of 256 is a 256-way task, another loss than the
paper's 32-way one. Here the rows are cut, in order, into groups of `group_size` (a last, shorter group
takes the remainder), each group is one ConVIRT loss over its own rows, and the loss is the mean over
groups, so the task stays `group_size`-way at any batch and the chance level stays ln(group_size):

    L = (1/G) * sum_k convirt_loss(img[k*g:(k+1)*g], txt[k*g:(k+1)*g])

The groups are one batched matrix product (G, g, g), not a Python loop: one kernel whatever G is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from usconvirt.losses.infonce import at_least_fp32, convirt_loss, equivalent_targets


def contrastive_chance(batch: int, group_size: int | None) -> float:
    """The loss of an encoder that tells nothing apart: ln of the number of candidates a row sees."""
    return math.log(batch if not group_size else min(batch, group_size))


def _equal_groups_loss(images: torch.Tensor, texts: torch.Tensor, tau: float, lam: float,
                       keys: torch.Tensor | None = None) -> torch.Tensor:
    """Mean ConVIRT loss of (G, g, d) normalised groups; every group has g rows, so the mean over all rows
    is the mean of the groups' means. `keys` (G, g): equivalent texts share their targets (infonce.py)."""
    logits = images @ texts.transpose(1, 2) / tau  # (G, g, g): row i of group k against its g texts
    if keys is None:
        target = torch.arange(logits.shape[1], device=logits.device).repeat(logits.shape[0])
    else:
        target = equivalent_targets(keys).flatten(0, 1)
    image_to_text = F.cross_entropy(logits.flatten(0, 1), target)
    text_to_image = F.cross_entropy(logits.transpose(1, 2).flatten(0, 1), target)
    return lam * image_to_text + (1.0 - lam) * text_to_image


def grouped_convirt_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, group_size: int | None,
                         tau: float = 0.1, lam: float = 0.75, text_keys: torch.Tensor | None = None,
                         ) -> torch.Tensor:
    """Mean of ConVIRT's loss over consecutive groups of `group_size` pairs; None or >= N: the whole batch."""
    if img_emb.dim() != 2 or img_emb.shape != txt_emb.shape:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(img_emb.shape)} "
                         f"and {tuple(txt_emb.shape)}")
    n = len(img_emb)
    if group_size is not None and group_size < 2:
        raise ValueError(f"a contrastive group needs at least 2 pairs, got {group_size}")
    if group_size is None or group_size >= n:
        return convirt_loss(img_emb, txt_emb, tau, lam, text_keys)
    full, rest = divmod(n, group_size)
    with torch.autocast(device_type=img_emb.device.type, enabled=False):
        images = F.normalize(at_least_fp32(img_emb), dim=1)
        texts = F.normalize(at_least_fp32(txt_emb), dim=1)
        cut = full * group_size
        keys = (None, None) if text_keys is None else (text_keys[:cut].view(full, group_size),
                                                       text_keys[cut:].unsqueeze(0))
        total = full * _equal_groups_loss(images[:cut].view(full, group_size, -1),
                                          texts[:cut].view(full, group_size, -1), tau, lam, keys[0])
        if rest > 1:  # a single leftover pair has no negative: it takes no part
            total = total + _equal_groups_loss(images[cut:].unsqueeze(0), texts[cut:].unsqueeze(0), tau, lam,
                                               keys[1])
            return total / (full + 1)
        return total / full
