"""Cluster model: the shared image encoder followed by a linear softmax head over K clusters."""

from __future__ import annotations

import torch
from torch import nn

from usconvirt.clustering.config import ClusterConfig
from usconvirt.config import check_value
from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder


class ClusterModel(nn.Module):
    """(B, 1, S, S) frames in [0, 1] -> (B, K) cluster logits."""

    def __init__(self, encoder_config: ImageEncoderConfig, clusters: int) -> None:
        super().__init__()
        check_value(ClusterConfig, "clusters", clusters, source="cluster model")
        self.encoder = create_image_encoder(encoder_config)
        self.head = nn.Linear(self.encoder.out_dim, clusters)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))
