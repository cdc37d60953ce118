"""Every rejection of load_dataset, through `usconvirt validate`: exit 2, one line naming file, row, field."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture
def rows(dataset_rows):
    return dataset_rows(n_patients=2, exams_per_patient=1)


def _drop(rows, column):
    return [{k: v for k, v in r.items() if k != column} for r in rows]


# (name, how to break the rows, file, row, field); rows are numbered from 1, header excluded
CASES = [
    ("missing exam column", lambda e, i: (_drop(e, "report"), i), "exams.csv", None, "report"),
    ("missing image column", lambda e, i: (e, _drop(i, "path")), "images.csv", None, "path"),
    ("duplicate exam id", lambda e, i: (e + [dict(e[0])], i), "exams.csv", 3, "exam_id"),
    ("duplicate image id", lambda e, i: (e, i + [dict(i[1])]), "images.csv", 5, "image_id"),
    ("empty exam id", lambda e, i: ([e[0], {**e[1], "exam_id": " "}], i), "exams.csv", 2, "exam_id"),
    ("empty image id", lambda e, i: (e, [i[0], {**i[1], "image_id": ""}, *i[2:]]), "images.csv", 2,
     "image_id"),
    ("unknown exam", lambda e, i: (e, i[:3] + [{**i[3], "exam_id": "nope"}]), "images.csv", 4, "exam_id"),
    (
        "missing path",
        lambda e, i: (e, i[:2] + [{**i[2], "path": "frames/absent.png"}] + i[3:]),
        "images.csv",
        3,
        "path",
    ),
    (
        "path escaping",
        lambda e, i: (e, i[:1] + [{**i[1], "path": "../outside.png"}] + i[2:]),
        "images.csv",
        2,
        "path",
    ),
    ("empty report", lambda e, i: ([e[0], {**e[1], "report": "   "}], i), "exams.csv", 2, "report"),
    (
        "unknown organ",
        lambda e, i: (e, i[:1] + [{**i[1], "organ": "heart"}] + i[2:]),
        "images.csv",
        2,
        "organ",
    ),
    (
        "unknown label",
        lambda e, i: (e, i[:2] + [{**i[2], "label": "sick"}] + i[3:]),
        "images.csv",
        3,
        "label",
    ),
]


@pytest.mark.parametrize(("name", "breaker", "file", "row", "field"), CASES, ids=[c[0] for c in CASES])
def test_validate_rejects(tmp_path, cli, write_dataset, rows, name, breaker, file, row, field):
    exams, images = breaker(*rows)
    root = write_dataset(tmp_path / "ds", exams, images, no_file=("frames/absent.png",))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code, out = cli("validate", root)
    assert code == 2, out
    message = out.strip()
    assert "\n" not in message, message  # one line
    assert file in message and f"field '{field}'" in message
    if row is not None:
        assert f"row {row}" in message
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_validate_rejects_an_empty_image_file(tmp_path, cli, write_dataset, rows):
    exams, images = rows
    root = write_dataset(tmp_path / "ds", exams, images)
    (root / images[2]["path"]).write_bytes(b"")  # an export cut short
    code, out = cli("validate", root)
    assert code == 2
    path = images[2]["path"]
    assert out.strip() == f"error: {root / 'images.csv'}, row 3, field 'path': image file '{path}' is empty"


def test_validate_rejects_non_utf8_report(tmp_path, cli, write_dataset, rows):
    exams, images = rows
    root = write_dataset(tmp_path / "ds", exams, images)
    text = (root / "exams.csv").read_text(encoding="utf-8").splitlines()
    text[2] = text[2].replace("normale", "normale \xe9chog\xe8ne")
    (root / "exams.csv").write_bytes(("\n".join(text) + "\n").encode("latin-1"))
    code, out = cli("validate", root)
    assert code == 2
    assert "exams.csv" in out and "row 2" in out and "field 'report'" in out and "UTF-8" in out


@pytest.mark.parametrize("table", ["exams.csv", "images.csv"])
def test_validate_names_a_semicolon_spreadsheet_export(tmp_path, cli, write_dataset, rows, table):
    # exams.csv breaks the parser at a report's comma, images.csv (no comma) parses as one column
    root = write_dataset(tmp_path / "ds", *rows)
    frame = pd.read_csv(root / table, dtype=str, keep_default_na=False)
    if table == "exams.csv":
        frame["report"] += " Pas de dilatation, pas de kyste."
    frame.to_csv(root / table, sep=";", index=False)
    code, out = cli("validate", root)
    assert code == 2 and out.strip() == f"error: {root / table}: the header line is ';'-separated; " \
        "expected a comma-separated UTF-8 CSV"


def test_validate_accepts_a_valid_dataset(tmp_path, cli, write_dataset, rows):
    root = write_dataset(tmp_path / "ds", *rows)
    code, out = cli("validate", root)
    assert code == 0, out
    assert "2 exams" in out and "4 images" in out
