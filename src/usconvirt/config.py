"""Dataclass configs: build from dicts/YAML with unknown keys rejected, save the resolved config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from usconvirt.errors import InputError
from usconvirt.io import atomic_path

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build dataclass `cls` from `values`, recursing into nested dataclasses; unknown keys fail."""
    values = dict(values or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"unknown key(s) {unknown}; expected some of {sorted(names)}", file=source)
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, source=f"{source}.{name}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def config_from_file(cls: type[T], path: str | Path | None, section: str,
                     overrides: dict[str, Any] | None = None) -> T:
    """Dataclass `cls` from a YAML file, then the command-line flags that are set (not None).

    The file holds `cls`'s keys at the top level, or under `section` as in a pipeline config.
    """
    values = load_yaml(path) if path is not None else {}
    if isinstance(values.get(section), dict):
        values = values[section]
    values |= {k: v for k, v in (overrides or {}).items() if v is not None}
    return from_dict(cls, values, source=str(path or "options"))


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-dict view of a dataclass config (tuples become lists, paths strings)."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(dataclasses.asdict(config))


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise InputError("config file does not exist", file=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise InputError(f"invalid YAML: {str(err).splitlines()[0]}", file=path) from err
    if not isinstance(data, dict):
        raise InputError("expected a mapping at the top level", file=path)
    return data


def save_yaml(data: dict[str, Any] | Any, path: str | Path) -> Path:
    """Save a dict or dataclass config as YAML, atomically."""
    if dataclasses.is_dataclass(data):
        data = to_dict(data)
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Path(path)


def config_hash(data: dict[str, Any] | Any) -> str:
    """Stable short hash of a config, for the pipeline's stage manifest."""
    if dataclasses.is_dataclass(data):
        data = to_dict(data)
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
