"""SimCLR's NT-Xent loss (Chen et al., ICML 2020): two augmented views of each image, 2N - 2 negatives.

For the 2N views z (L2-normalised), view i's positive is the other view of the same image:
l_i = -log( exp(<z_i, z_p(i)>/tau) / sum_{k != i} exp(<z_i, z_k>/tau) ), averaged over the 2N views.
It is the image-only control of ConVIRT: the same encoder and augmentations, but no text.
Computed in float32 under autocast, like `convirt_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from usconvirt.losses.infonce import at_least_fp32


def nt_xent_loss(view_a: torch.Tensor, view_b: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Mean NT-Xent over both views; row i of `view_a` and of `view_b` embed the same image."""
    if view_a.shape != view_b.shape or view_a.dim() != 2:
        raise ValueError(f"expected two (N, d) embeddings of the same shape, got {tuple(view_a.shape)} "
                         f"and {tuple(view_b.shape)}")
    with torch.autocast(device_type=view_a.device.type, enabled=False):
        z = F.normalize(at_least_fp32(torch.cat([view_a, view_b])), dim=1)
        logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))  # a view is not its own negative
        n = len(view_a)
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
        return F.cross_entropy(logits, targets)
