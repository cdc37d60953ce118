"""Organ clustering of unlabeled frames: two-view deep clustering, cluster-to-organ mapping, selection."""

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.run import run_clustering

__all__ = ["ClusterConfig", "run_clustering"]
