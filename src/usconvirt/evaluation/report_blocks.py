"""The building blocks of the run report's data: text, warnings, tables of display strings, figures.

Plain dicts with a `kind`, which the template `resources/templates/report.html.j2` renders; tables hold
strings only, formatted here, so the template does no arithmetic.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

Block = dict[str, Any]
_INTEGER = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")

# Column names of the stage tables, as a reader of the report would say them.
DISPLAY_NAMES = {
    "init": "initialisation", "probe_accuracy": "linear probe accuracy",
    "probe_macro_f1": "linear probe macro-F1", "knn_accuracy": "kNN accuracy",
    "silhouette": "silhouette (normal vs abnormal)", "n_train": "train frames", "n_test": "test frames",
    "fraction": "fraction of train set", "macro_f1": "test macro-F1", "accuracy": "test accuracy",
    "abnormal_patients": "abnormal patients",
}


def missing(what: str) -> Block:
    return {"kind": "missing", "text": what}


def error(what: str) -> Block:
    return {"kind": "error", "text": what}


def text(words: str, kind: str = "text") -> Block:
    """A paragraph: kind `text`, `note` (small print), `heading` or `subheading`."""
    return {"kind": kind, "text": words}


def warnings_block(lines: list[str]) -> list[Block]:
    return [{"kind": "warnings", "items": list(lines)}] if lines else []


def table(df: pd.DataFrame, *, marks: list[bool] | None = None) -> Block:
    """A table of display strings (counts as integers, measures with three decimals); marked rows flagged.

    Numbers keep the kind their stage wrote: an integer stays one (CSV text "12", an int, or an int
    column that a missing value turned into floats), any other number gets three decimals.
    """
    shown = df.rename(columns=DISPLAY_NAMES)
    cells = []
    for column in shown.columns:
        values = shown[column]
        upcast = pd.api.types.is_float_dtype(values) and values.isna().any() and all(
            float(v).is_integer() for v in values.dropna())
        cells.append([_display(v, upcast) for v in values])
    rows = [list(row) for row in zip(*cells, strict=True)] if cells else []
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] == "n/a" for row in rows)
               for i in range(len(shown.columns))]
    return {"kind": "table", "columns": [str(c) for c in shown.columns], "groups": None, "rows": rows,
            "numeric": numeric, "marks": list(marks) if marks is not None else [False] * len(rows)}


def figure(source: Path | bytes, alt: str = "figure") -> Block:
    """An image embedded as a base64 data URI, so the report is one file that travels alone."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return {"kind": "figure", "alt": alt if isinstance(source, bytes) else Path(source).stem,
            "src": "data:image/png;base64," + base64.b64encode(data).decode()}


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def _display(value: Any, upcast_int: bool = False) -> str:
    if _is_missing(value):
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer) or (upcast_int and isinstance(value, float | np.floating)):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return f"{value:.3f}"
    words = str(value).strip()
    if _INTEGER.fullmatch(words):
        return words
    return f"{float(words):.3f}" if _FLOAT.fullmatch(words) else str(value)


def _is_number(cell: str) -> bool:
    """Whether a display string is a number (a share like "16.1%" included), to right-align it."""
    return bool(_FLOAT.fullmatch(cell.removesuffix("%")))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and bool(np.isnan(value)))


def format_share(value: Any) -> str:
    return "n/a" if _is_missing(value) else f"{float(value):.1%}"


def json_tables(data: dict[str, Any]) -> list[Block]:
    """Any JSON object as tables: its flat values as key/value rows, dicts of dicts as matrices."""
    flat: dict[str, Any] = {}
    matrices: list[Block] = []
    for key, value in data.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            matrix = pd.DataFrame.from_dict(
                {k: {c: _cell(x) for c, x in flatten(v).items()} for k, v in value.items()}, orient="index")
            matrices += [text(str(key), "subheading"), table(matrix.rename_axis(str(key)).reset_index())]
        else:
            flat.update(flatten({key: value}))
    rows = pd.DataFrame({"": list(flat), "value": [_cell(v) for v in flat.values()]})
    return ([table(rows)] if flat else []) + matrices


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name} / "))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(format_number(v) if isinstance(v, int | float) else str(v) for v in value)
    return value
