"""Every table reader reports a missing column in io.require_columns' one form: file, field, what was
expected and what was found, on one line."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from usconvirt.bundle.sources import dataset_jobs
from usconvirt.data import load_dataset
from usconvirt.data.ingest import _read_reports
from usconvirt.data.split import read_split
from usconvirt.errors import InputError
from usconvirt.evaluation.evaluate import read_predictions
from usconvirt.pairing import load_pairs
from usconvirt.text.sentences import read_exams
from usconvirt.weak_labels import load_weak_labels


def _write(path: Path) -> Path:
    pd.DataFrame({"other": ["x"], "more": ["y"]}).to_csv(path, index=False)
    return path


def _table(name: str):
    """A reader of one file: the file is both its argument and the file the message names."""
    return lambda tmp: (_write(tmp / name),) * 2


def _directory(*stems: str):
    """A reader of a directory of tables: the message names the first one."""
    def build(tmp: Path):
        root = tmp / "ds"
        root.mkdir()
        return root, [_write(root / f"{stem}.csv") for stem in stems][0]
    return build


# (name, reader, build its input in tmp_path: (the reader's argument, the file the message names))
CASES = [
    ("dataset", load_dataset, _directory("exams", "images")),
    ("dataset_jobs", dataset_jobs, _directory("images")),
    ("predictions", read_predictions, _table("predictions.csv")),
    ("pairs", load_pairs, _table("pairs.csv")),
    ("split", read_split, _table("split.csv")),
    ("weak labels", load_weak_labels, _table("weak_labels.csv")),
    ("exams", read_exams, _table("exams.csv")),
    ("reports", lambda path: _read_reports(path, "accession", "report", None), _table("reports.csv")),
]


@pytest.mark.parametrize(("name", "reader", "inputs"), CASES, ids=[c[0] for c in CASES])
def test_missing_column_is_one_line_naming_file_and_column(tmp_path, name, reader, inputs):
    argument, file = inputs(tmp_path)
    with pytest.raises(InputError) as caught:
        reader(argument)
    message = str(caught.value)
    pattern = (rf"{re.escape(str(file))}, field '(\w+)': missing column\(s\) \1\b[^\n]*; "
               r"expected [^\n]*, found 2 columns")
    assert re.fullmatch(pattern, message), message


def test_a_table_without_header_keeps_its_first_row_out_of_the_message(tmp_path):
    # the first data row becomes the header: its cells are report text and names
    (tmp_path / "reports.csv").write_text("ACC1,Rein gauche kyste. Dr Dupont\nACC2,Reins normaux.\n")
    with pytest.raises(InputError) as caught:
        _read_reports(tmp_path / "reports.csv", "accession", "report", None)
    assert "found 2 columns" in str(caught.value) and "Dupont" not in str(caught.value)
