"""Synthetic abdominal ultrasound corpus: B-mode frames of every organ, kidney findings, French reports.

The names below load lazily: a pipeline config validates without importing what runs the stage.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"Prevalences": "config", "SynthConfig": "config", "generate_corpus": "corpus"}
__all__ = ["Prevalences", "SynthConfig", "generate_corpus"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"usconvirt.synth.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'usconvirt.synth' has no attribute '{name}'")
