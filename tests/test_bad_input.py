"""Bad input from a hospital's messy export: one line naming the file, exit code 2, nothing half-written."""

from __future__ import annotations

import pytest

from usconvirt.errors import InputError
from usconvirt.io import read_table


@pytest.mark.parametrize("name", ["exams.csv", "pairs.parquet", "x.jsonl"])
def test_a_folder_named_like_a_table_is_named_as_bad_input(tmp_path, name):
    (tmp_path / name).mkdir()
    with pytest.raises(InputError, match=name):
        read_table(tmp_path / name)


def test_an_unreadable_table_is_bad_input(tmp_path, monkeypatch):
    table = tmp_path / "exams.csv"
    table.write_text("exam_id\ne1\n")

    def denied(*args, **kwargs):  # chmod 000 does not stop root, who runs many containers
        raise PermissionError(13, "Permission denied", str(table))

    monkeypatch.setattr("pandas.read_csv", denied)
    with pytest.raises(InputError, match="exams.csv: cannot read the table: Permission denied"):
        read_table(table)
