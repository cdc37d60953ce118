"""LightningModule for two-view Dirichlet-prior clustering: training reads pixels only."""

from __future__ import annotations

import lightning as L
import torch

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.model import ClusterModel
from usconvirt.clustering.views import build_views
from usconvirt.data.augment import augment_batch
from usconvirt.losses.dirichlet_clustering import DirichletClusteringLoss


class ClusteringModule(L.LightningModule):
    """Each batch of frames becomes two views (two schemes) scored by DirichletClusteringLoss."""

    def __init__(self, config: ClusterConfig) -> None:
        super().__init__()
        self.config = config
        self.model = ClusterModel(config.encoder, config.clusters)
        self.view_a, self.view_b = build_views(config.image_size)
        self.loss = DirichletClusteringLoss(alpha=config.alpha, consistency_weight=config.consistency_weight,
                                            prior_weight=config.prior_weight,
                                            entropy_weight=config.entropy_weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def training_step(self, images: torch.Tensor, batch_idx: int) -> torch.Tensor:
        views = torch.cat([augment_batch(self.view_a, images), augment_batch(self.view_b, images)])
        logits_a, logits_b = self.model(views).chunk(2)  # one pass, so BatchNorm sees both views
        terms = self.loss(logits_a, logits_b)
        clusters_used = logits_a.argmax(1).unique().numel()
        self.log_dict({f"train/{k}": terms[k].detach() for k in ("consistency", "prior", "entropy")})
        self.log("train/loss", terms["loss"].detach(), prog_bar=True)
        self.log("train/clusters_used", float(clusters_used), prog_bar=True)
        return terms["loss"]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)
