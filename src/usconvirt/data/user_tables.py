"""Tables users bring from their own tools (reports, annotations): any common CSV dialect and encoding.

A French spreadsheet saves CSV as `;`-separated cp1252; others save `,` or tab separated UTF-8, with or
without a byte-order mark. The separator is the candidate that splits the header line into the most
columns; the encoding is UTF-8 (BOM or not) or UTF-16 (BOM) when the bytes decode as such, else cp1252
(a superset of Latin-1 for text). `encoding=` forces one. JSONL and Parquet are read as they are.
"""

from __future__ import annotations

import codecs
import io
import logging
from pathlib import Path

import pandas as pd

from usconvirt.errors import InputError
from usconvirt.io import read_table, sniff_separator

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")


def read_user_table(path: str | Path, *, encoding: str | None = None) -> pd.DataFrame:
    """A user's table as strings, header names stripped; separator and encoding sniffed for text files."""
    path = Path(path)
    if not path.exists():
        raise InputError("file does not exist", file=path)
    if path.suffix.lower() not in TEXT_SUFFIXES:
        table = read_table(path)
    else:
        if path.is_dir():
            raise InputError("is a folder, expected a table file", file=path)
        try:
            raw = path.read_bytes()
        except OSError as err:  # unreadable: permissions, a broken mount
            raise InputError(f"cannot read the table: {err.strerror or err}", file=path) from err
        name = encoding or sniff_encoding(raw)
        try:
            text = raw.decode(name)
        except LookupError as err:
            raise InputError(f"unknown encoding '{name}'", file=path, field="encoding") from err
        except UnicodeDecodeError as err:
            raise InputError(f"not valid {name} at byte {err.start}; give --encoding", file=path,
                             field="encoding") from err
        separator = sniff_separator(text)
        log.info("%s: read as %s, separator %r", path.name, name, separator)
        try:
            table = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as err:
            raise InputError(f"cannot parse table: {str(err).splitlines()[0]}", file=path) from err
    table.columns = [str(c).strip() for c in table.columns]
    return table


def sniff_encoding(raw: bytes) -> str:
    """utf-16 (with BOM), utf-8-sig (BOM or plain UTF-8), else cp1252."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        raw.decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp1252"


