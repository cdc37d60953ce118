"""Synthetic abdominal ultrasound corpus: B-mode frames of every organ, kidney findings, French reports.

The names below load lazily: a pipeline config validates without importing what runs the stage.
"""

from __future__ import annotations

from usconvirt.lazy import lazy_attributes

_MODULES = {"Prevalences": "config", "SynthConfig": "config", "generate_corpus": "corpus"}
__all__ = ["Prevalences", "SynthConfig", "generate_corpus"]

__getattr__ = lazy_attributes(__name__, _MODULES)
