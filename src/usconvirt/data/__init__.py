"""Data: the dataset format, image I/O, ultrasound preprocessing, ingest, splits, torch datasets.

The names below load lazily: the package's settings (`usconvirt.data.config`) import without pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"ORGANS": "schema", "Dataset": "dataset", "load_dataset": "dataset"}
__all__ = ["ORGANS", "Dataset", "load_dataset"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"usconvirt.data.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'usconvirt.data' has no attribute '{name}'")
