"""Organ clustering of unlabeled frames: two-view deep clustering, cluster-to-organ mapping, selection.

The names below load lazily: a pipeline config validates without importing what runs the stage.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"ClusterConfig": "config", "run_clustering": "run"}
__all__ = ["ClusterConfig", "run_clustering"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"usconvirt.clustering.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'usconvirt.clustering' has no attribute '{name}'")
