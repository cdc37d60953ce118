"""Dataclass configs: build from dicts/YAML with unknown keys rejected, save the resolved config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from usconvirt.errors import InputError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build dataclass `cls` from `values`, recursing into nested dataclasses.

    Unknown keys, values of the wrong type and values outside a field's allowed set (a `Literal` hint or
    `field(metadata={"choices": ...})`) fail with one line naming `source.key` and what was expected; so
    does a key the dataclass lists in its `retired` class attribute (an experiment taken out).
    """
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise InputError(f"expected a mapping of {cls.__name__} keys, got {_shown(values)}", file=source)
    retired = [key for key in getattr(cls, "retired", ()) if key in values]
    if retired:
        raise InputError(f"'{retired[0]}' was an experiment that was measured and not adopted, and is no "
                         "longer a setting (docs/experiments/); remove it", file=f"{source}.{retired[0]}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(f"unknown key(s) {unknown}; expected some of {sorted(fields)}", file=source)
    kwargs = {name: checked_value(hints[name], value, f"{source}.{name}",
                                  fields[name].metadata.get("choices"))
              for name, value in values.items()}
    return cls(**kwargs)


def checked_value(hint: Any, value: Any, where: str, choices: Any = None) -> Any:
    """`value` as type `hint` (YAML lists to tuples, ints to floats), or an InputError naming `where`."""
    converted = _convert(hint, value, where)
    if choices is not None and converted is not None and converted not in tuple(choices):
        raise InputError(f"expected one of {list(choices)}, got {_shown(value)}", file=where)
    return converted


class _Mismatch(Exception):
    pass


def _convert(hint: Any, value: Any, where: str) -> Any:
    try:
        return _as(hint, value, where)
    except _Mismatch:
        raise InputError(f"expected {_type_name(hint)}, got {_shown(value)}", file=where) from None


def _as(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _as(arg, value, where)
            except (_Mismatch, InputError):
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in args:
            return value
        raise InputError(f"expected one of {list(args)}, got {_shown(value)}", file=where)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return from_dict(hint, value, source=where)
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        item = args[0] if args else Any
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            item = Any  # fixed-length tuples are rare here; their items are left to the dataclass
        items = [_as(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        key, item = args if args else (Any, Any)
        return {_as(key, k, where): _as(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if hint is str:
        # YAML reads `devices: 1` as an int where the field holds "1": the number says the same thing.
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if hint is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise _Mismatch
    return value


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        return f"a list of {_type_name(args[0])}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if dataclasses.is_dataclass(hint):
        return f"a mapping of {hint.__name__} keys"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path"}.get(hint, getattr(hint, "__name__", str(hint)))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
    from usconvirt.io import atomic_path  # pandas, which io needs, is not needed to validate a config

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
