"""Model bundles: `usconvirt export` writes a self-contained directory, `usconvirt predict` applies it.

See docs/use.md for the layout and the outputs. Names load lazily, so the CLI's `--help` stays fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Bundle", "ExportConfig", "PredictConfig", "export_bundle", "load_bundle", "predict_input"]

_HOMES = {"Bundle": "load", "load_bundle": "load", "ExportConfig": "export", "export_bundle": "export",
          "PredictConfig": "predict", "predict_input": "predict"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'usconvirt.bundle' has no attribute '{name}'")
    from importlib import import_module

    return getattr(import_module(f"usconvirt.bundle.{_HOMES[name]}"), name)
