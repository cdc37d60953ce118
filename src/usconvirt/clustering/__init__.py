"""Organ clustering of unlabeled frames: two-view deep clustering, cluster-to-organ mapping, selection.

The names below load lazily: a pipeline config validates without importing what runs the stage.
"""

from __future__ import annotations

from usconvirt.lazy import lazy_attributes

_MODULES = {"ClusterConfig": "config", "run_clustering": "run"}
__all__ = ["ClusterConfig", "run_clustering"]

__getattr__ = lazy_attributes(__name__, _MODULES)
