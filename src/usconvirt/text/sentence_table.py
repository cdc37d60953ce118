"""The sentence stage's table read back with its types: `usconvirt sentences --out` may write CSV or
JSONL, which give every column back as text, and "False" is a true string."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from usconvirt.errors import InputError
from usconvirt.io import read_table, require_ids

BOOLEANS = {"true": True, "false": False, "": pd.NA, "nan": pd.NA, "none": pd.NA, "<na>": pd.NA}


def read_sentences(path: str | Path) -> pd.DataFrame:
    """The sentences table with integer `start`/`end` and a nullable boolean `abnormal`."""
    table = read_table(path)
    if "exam_id" in table.columns:  # a sentence of no exam would be dropped unseen by every grouping
        require_ids(table, "exam_id", path, unique=False)
    for column in ("start", "end"):
        if column in table.columns:
            numbers = pd.to_numeric(table[column], errors="coerce")
            bad = numbers.isna()
            if bad.any():
                # The cell is not echoed: a misquoted CSV shifts report text into any column.
                raise InputError("expected an integer", file=path,
                                 row=int(bad.to_numpy().argmax()) + 1, field=column)
            table[column] = numbers.astype("int64")
    if "abnormal" in table.columns and not pd.api.types.is_bool_dtype(table["abnormal"]):
        text = table["abnormal"].map(lambda v: "" if v is None else str(v).strip().lower())
        bad = ~text.isin(list(BOOLEANS))
        if bad.any():
            raise InputError("expected True, False or empty",
                             file=path, row=int(bad.to_numpy().argmax()) + 1, field="abnormal")
        table["abnormal"] = text.map(BOOLEANS).astype("boolean")
    return table
