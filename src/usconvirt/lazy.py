"""Package attributes imported on first use, so that a package's light modules (its configs) import alone."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: `name` comes from `package.<modules[name]>`."""
    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")
    return __getattr__
