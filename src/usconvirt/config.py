"""Dataclass configs: build from dicts/YAML with unknown keys rejected, save the resolved config."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from usconvirt.errors import InputError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any] | None, *, source: str = "config") -> T:
    """Build dataclass `cls` from `values`, recursing into nested dataclasses.

    Unknown keys, values of the wrong type and values outside a field's allowed set (a `Literal` hint or
    `field(metadata={"choices": ...})`) or range (`field(metadata={"range": "(0, 1]"})`, see `RANGE`) fail
    with one line naming `source.key` and what was expected; so does a key the dataclass lists in its
    `retired` class attribute (an experiment taken out), and a rule between fields that its `check()`
    method raises as an InputError naming the field.
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
    kwargs = {name: checked_value(hints[name], value, f"{source}.{name}", fields[name].metadata)
              for name, value in values.items()}
    config = cls(**kwargs)
    _check_between_fields(config, source)
    return config


def checked_value(hint: Any, value: Any, where: str, rules: Mapping[str, Any] | None = None) -> Any:
    """`value` as type `hint` (YAML lists to tuples, ints to floats), within the `choices` and `range` of
    `rules` (a field's metadata), or an InputError naming `where`."""
    converted = _convert(hint, value, where)
    broken = _broken_rule(converted, rules or {})
    if broken:
        raise InputError(broken[1], file=where + broken[0])
    return converted


def check_fields(config: Any, *, source: str) -> None:
    """The guard a stage keeps for callers of its API, who build configs without `from_dict`: the same
    declared choices, ranges and `check()` rules, with the same messages, naming `source` and the field."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            check_fields(value, source=f"{source}.{f.name}")
            continue
        broken = _broken_rule(value, f.metadata)
        if broken:
            raise InputError(broken[1], file=source, field=f.name + broken[0])
    _check_between_fields(config, source)


def check_value(cls: type, name: str, value: Any, *, source: str) -> None:
    """A plain value given outside its config (a model's K, say) held to the choices and range that field
    `name` of dataclass `cls` declares, with check_fields' message: one rule wherever the value comes from."""
    rules = next(f.metadata for f in dataclasses.fields(cls) if f.name == name)
    broken = _broken_rule(value, rules)
    if broken:
        raise InputError(broken[1], file=source, field=name + broken[0])


def _check_between_fields(config: Any, source: str) -> None:
    check = getattr(config, "check", None)
    if check is None:
        return
    try:
        check()
    except InputError as err:
        raise InputError(err.message, file=f"{source}.{err.field}" if err.field else source) from None


# A field's range, as `metadata={"range": "(0, 1]"}`: an interval, each end a number or inf, a bracket
# closed and a parenthesis open. A list's items and a mapping's values are each checked; None passes.
RANGE = re.compile(r"^([\[(])\s*(-?(?:inf|[0-9.e+-]+))\s*,\s*(-?(?:inf|[0-9.e+-]+))\s*([\])])$")
# the ranges fields declare most: a count of one or more; a count, rate or weight that may be 0; a share
COUNT, NOT_NEGATIVE, SHARE = "[1, inf)", "[0, inf)", "[0, 1]"


def _broken_rule(value: Any, rules: Mapping[str, Any]) -> tuple[str, str] | None:
    """(where inside `value`, what was expected) for the first part of `value` outside the field's declared
    `choices` or `range`; None when all of it lies inside."""
    choices, interval = rules.get("choices"), rules.get("range")
    if value is None or (choices is None and interval is None):
        return None
    if isinstance(value, dict):
        parts = [(f".{key}", item) for key, item in value.items()]
    elif isinstance(value, list | tuple):
        parts = [(f"[{i}]", item) for i, item in enumerate(value)]
    else:
        parts = [("", value)]
    for where, item in parts:
        if choices is not None and item not in tuple(choices):
            return where, f"expected one of {list(choices)}, got {_shown(item)}"
        if interval is not None and item is not None and not _within(item, interval):
            return where, f"expected {_range_name(interval)}, got {_shown(item)}"
    return None


def _interval(text: str) -> tuple[float, float, bool, bool]:
    """(low, high, low included, high included) of a range such as "(0, 1]"."""
    match = RANGE.match(text)
    if match is None:
        raise ValueError(f"not a range: {text!r}; expected e.g. '(0, 1]' or '[1, inf)'")
    opening, low, high, closing = match.groups()
    return float(low), float(high), opening == "[", closing == "]"


def _within(value: float, text: str) -> bool:
    low, high, low_in, high_in = _interval(text)
    return (low < value or (low_in and value == low)) and (value < high or (high_in and value == high))


def _range_name(text: str) -> str:
    low, high, low_in, _ = _interval(text)
    if math.isinf(high):
        return f"{'at least' if low_in else 'more than'} {low:g}"
    return f"a value in {text}"


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
    except UnicodeDecodeError as err:  # a config saved by a Windows editor in cp1252
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise InputError(f"not valid UTF-8 (line {line})", file=path) from err
    except OSError as err:  # a folder, an unreadable file
        raise InputError(f"cannot read the config: {err.strerror or err}", file=path) from err
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
