"""Data: the dataset format, image I/O, ultrasound preprocessing, ingest, splits, torch datasets.

The names below load lazily: the package's settings (`usconvirt.data.config`) import without pandas.
"""

from __future__ import annotations

from usconvirt.lazy import lazy_attributes

_MODULES = {"ORGANS": "schema", "Dataset": "dataset", "load_dataset": "dataset"}
__all__ = ["ORGANS", "Dataset", "load_dataset"]

__getattr__ = lazy_attributes(__name__, _MODULES)
