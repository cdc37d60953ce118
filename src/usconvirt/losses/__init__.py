"""Losses, one per file; no Lightning import, usable in any training loop."""

from usconvirt.losses.dirichlet_clustering import DirichletClusteringLoss, dirichlet_prior_loss
from usconvirt.losses.gce import GeneralizedCrossEntropy, generalized_cross_entropy
from usconvirt.losses.infonce import convirt_loss
from usconvirt.losses.nt_xent import nt_xent_loss
from usconvirt.losses.truncated_gce import ScheduledTruncatedGCE

__all__ = ["DirichletClusteringLoss", "GeneralizedCrossEntropy", "ScheduledTruncatedGCE", "convirt_loss",
           "dirichlet_prior_loss", "generalized_cross_entropy", "nt_xent_loss"]
