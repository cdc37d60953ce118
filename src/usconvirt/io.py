"""Table I/O by extension (CSV, JSONL, Parquet) and atomic writes: no half-written output."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from usconvirt.errors import InputError

TABLE_SUFFIXES = (".csv", ".jsonl", ".parquet")


def find_table(directory: Path, stem: str) -> Path:
    """The one `stem.{csv,jsonl,parquet}` in `directory`."""
    found = [directory / f"{stem}{s}" for s in TABLE_SUFFIXES if (directory / f"{stem}{s}").exists()]
    if not found:
        raise InputError(f"no {stem}.csv, {stem}.jsonl or {stem}.parquet found", file=directory)
    if len(found) > 1:
        raise InputError(f"several {stem} tables found ({', '.join(p.name for p in found)}); keep one",
                         file=directory)
    return found[0]


def read_table(path: str | Path, *, dtype: dict | None = None) -> pd.DataFrame:
    """Read a CSV, JSONL or Parquet table; ids stay strings, text must be UTF-8."""
    path = Path(path)
    if not path.exists():
        raise InputError("file does not exist", file=path)
    if path.is_dir():  # pandas would read a folder named x.parquet as a (possibly empty) dataset
        raise InputError("is a folder, expected a table file", file=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, dtype=dtype or str, keep_default_na=False, encoding="utf-8")
            if len(table.columns) == 1 and _foreign_separator(path):
                raise pd.errors.ParserError("one column")
            return table
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=dtype or str, encoding="utf-8")
        if suffix == ".parquet":
            return pd.read_parquet(path)
    except UnicodeDecodeError as err:
        row, field = _locate_bad_utf8(path)
        raise InputError("not valid UTF-8", file=path, row=row, field=field) from err
    except OSError as err:  # unreadable: permissions, a broken mount
        raise InputError(f"cannot read the table: {err.strerror or err}", file=path) from err
    except (ValueError, pd.errors.ParserError) as err:
        separator = _foreign_separator(path) if suffix == ".csv" else None
        if separator:  # a spreadsheet's `;` export: the parser's own message points at some later line
            raise InputError(f"the header line is {separator!r}-separated; "
                             "expected a comma-separated UTF-8 CSV", file=path) from err
        raise InputError(f"cannot parse table: {str(err).splitlines()[0]}", file=path) from err
    raise InputError(f"unknown table format '{suffix}', expected .csv, .jsonl or .parquet", file=path)


SEPARATORS = (",", ";", "\t", "|")  # what a hospital's spreadsheet exports use


def sniff_separator(text: str, candidates: tuple[str, ...] = SEPARATORS) -> str:
    """The candidate separator that splits the header line into the most fields (',' on a tie)."""
    header = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    widths = {sep: len(next(csv.reader([header], delimiter=sep), [])) for sep in candidates}
    return max(candidates, key=lambda sep: (widths[sep], -candidates.index(sep)))


def _foreign_separator(path: Path) -> str | None:
    """`;` or tab when the CSV's header line splits into more fields on it than on commas."""
    with path.open(encoding="utf-8", errors="replace") as f:
        separator = sniff_separator(f.readline(), (",", ";", "\t"))
    return None if separator == "," else separator


def _locate_bad_utf8(path: Path) -> tuple[int | None, str | None]:
    """Data row (1-based; header excluded for CSV) and CSV column of the first byte that is not UTF-8."""
    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            if path.suffix.lower() != ".csv":
                return number + 1, None
            header = next(csv.reader([lines[0].decode("utf-8", errors="replace")]), [])
            column = len(next(csv.reader([line[: err.start].decode("utf-8", errors="replace")]), [""])) - 1
            return number, header[column] if 0 <= column < len(header) else None
    return None, None


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically, format chosen by extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"unknown table format '{suffix}', expected .csv, .jsonl or .parquet", file=path)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            df.to_parquet(tmp, index=False)
    return path


def require_columns(table: pd.DataFrame, columns: tuple[str, ...] | list[str], source: str | Path) -> None:
    """One InputError naming the table, the first missing column as its field, every missing column and
    how many columns were found, or nothing: the one form in which every table reports a missing column.
    The names found are not echoed: a table without a header row has its first row, report text or a
    patient's name, read as the header."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected {', '.join(columns)}, "
                         f"{columns_found(table)}", file=source, field=missing[0])


def columns_found(table: pd.DataFrame) -> str:
    """How many columns a table has, for an error line; never their names (see require_columns)."""
    found = len(table.columns)
    hint = " (one column: is the separator , ; or a tab?)" if found == 1 else ""
    return f"found {found} column{'s' * (found != 1)}{hint}"


def require_ids(table: pd.DataFrame, column: str, source: str | Path, *, unique: bool = True) -> None:
    """An InputError naming the first row whose id is empty or (`unique`) repeats an earlier one, or
    nothing."""
    ids = table[column].tolist()
    seen: set = set()
    for row, value in enumerate(ids, start=1):
        if pd.isna(value) or not str(value).strip():
            raise InputError("empty id", file=source, row=row, field=column)
        if unique and value in seen:
            raise InputError(f"duplicate id '{value}'", file=source, row=row, field=column)
        seen.add(value)



def require_known(table: pd.DataFrame, column: str, known: Iterable, source: str | Path, *,
                  what: str) -> None:
    """An InputError naming the first row whose `column` holds an id the dataset does not (`known`): a table
    made for another dataset, which a join would silently cut down to the ids both hold."""
    unknown = ~table[column].astype(str).isin({str(k) for k in known})
    if unknown.any():
        row = int(unknown.to_numpy().argmax())
        raise InputError(f"{what} '{table[column].iloc[row]}' is not in the dataset", file=source,
                         row=row + 1, field=column)

# What a truncated, edited or foreign model or JSON file raises while it is read and loaded (a wrong
# tensor shape is torch's RuntimeError); the `reading` blocks are narrow, so a bug is not mistaken for one.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError, EOFError,
                                                  RuntimeError, pickle.UnpicklingError)


@contextlib.contextmanager
def reading(path: str | Path, what: str = "file") -> Iterator[Path]:
    """Turn a failure to read or decode `path` into one InputError naming it (the reason's first line)."""
    from safetensors import SafetensorError

    path = Path(path)
    try:
        yield path
    except InputError:
        raise
    except (*_DECODE_ERRORS, SafetensorError) as err:
        lines = str(err).strip().splitlines()
        reason = f"missing key {err}" if isinstance(err, KeyError) else (lines[0] if lines else "")
        raise InputError(f"cannot read {what}: {reason or type(err).__name__}", file=path) from err


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """The JSON in `path`; an InputError naming it when it is missing, unreadable or not JSON."""
    with reading(path, what):
        return json.loads(Path(path).read_text(encoding="utf-8"))


def write_json(data: Any, path: str | Path) -> Path:
    """Write JSON atomically (indented, UTF-8, non-ASCII kept)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, allow_nan=True), encoding="utf-8")
    return Path(path)


def read_json_or_empty(path: str | Path) -> dict[str, Any]:
    """A small state file (a lock, a fingerprint): its JSON object, or {} when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def parents_made(path: Path) -> Iterator[None]:
    """Make `path`'s missing parent folders; a block that fails removes those it left empty, so a refused
    input leaves no trace, not even the empty folder its output would have gone in."""
    missing = [p for p in path.parents if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in missing:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    with parents_made(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        try:
            yield tmp_path
            os.replace(tmp_path, path)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def check_output_dir(path: str | Path, *, overwrite: bool = False) -> None:
    """An InputError when `path` exists, is not empty and `overwrite` is not given; before the work, so a
    refusal costs nothing (atomic_dir checks again when it writes)."""
    path = Path(path)
    if path.exists() and not overwrite and any(path.iterdir()):
        raise InputError("output directory exists and is not empty (use --overwrite)", file=path)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temp directory beside `path`; it becomes `path` only if the block succeeds."""
    path = Path(path)
    check_output_dir(path, overwrite=overwrite)
    with parents_made(path):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        tmp.chmod(0o777 & ~_umask())
        try:
            yield tmp
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
