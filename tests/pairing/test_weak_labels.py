"""Weak labels read from hand-made sentence tables: exam, side, sentence ids and frame labels."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from usconvirt.errors import InputError
from usconvirt.weak_labels import frame_labels, load_weak_labels, weak_labels


def sentences(*rows: tuple) -> pd.DataFrame:
    """(exam_id, start, laterality, abnormal) rows as the sentence stage writes them."""
    table = pd.DataFrame([{"exam_id": e, "start": s, "end": s + 10, "text": "t", "organ": "kidney",
                           "laterality": side, "abnormal": a, "selected_by": "concept"}
                          for e, s, side, a in rows])
    return table.astype({"abnormal": "boolean"})


TABLE = sentences(
    ("normal", 0, "both", False), ("normal", 20, "unspecified", pd.NA),
    ("abnormal", 0, "right", True), ("abnormal", 20, "left", False),
    ("hypothesis", 0, "right", pd.NA),
    ("unsided", 0, "unspecified", True), ("unsided", 20, "left", False),
    ("plural", 0, "both", True), ("plural", 20, "left", False),
)


def test_exam_and_side_labels_with_the_sentences_behind_them() -> None:
    table, counts = weak_labels(TABLE, ["normal", "abnormal", "hypothesis", "unsided", "plural", "silent"])
    rows = table.set_index("exam_id")
    assert rows.loc["normal", ["label", "right", "left"]].tolist() == ["normal"] * 3
    assert rows.loc["normal", "sentence_ids"] == "normal:0-10"  # the undecided sentence is not behind it
    assert rows.loc["abnormal", ["label", "right", "left"]].tolist() == ["abnormal", "abnormal", "normal"]
    assert rows.loc["abnormal", "right_sentence_ids"] == "abnormal:0-10"
    assert rows.loc["abnormal", "left_sentence_ids"] == "abnormal:20-30"
    # a hypothesis only, or no kidney sentence at all: unknown
    assert rows.loc["hypothesis", ["label", "right", "left"]].tolist() == ["unknown"] * 3
    assert rows.loc["hypothesis", "sentence_ids"] == "hypothesis:0-10"
    assert rows.loc["silent", ["label", "right", "left", "sentence_ids"]].tolist() == ["unknown"] * 3 + [""]
    # a finding on no named side leaves the sides it could be on undecided, even one read normal
    assert rows.loc["unsided", ["label", "right", "left"]].tolist() == ["abnormal", "unknown", "unknown"]
    # a side's own sentences come before those naming both kidneys
    assert rows.loc["plural", ["right", "left"]].tolist() == ["abnormal", "normal"]
    assert counts["exams"] == 6 and counts["without_sentences"] == 1
    assert (counts["exam_abnormal"], counts["exam_normal"], counts["exam_unknown"]) == (3, 1, 2)


def test_frames_take_their_exported_side_else_the_exam_and_never_images_side() -> None:
    table, _ = weak_labels(TABLE, ["abnormal", "hypothesis"])
    images = pd.DataFrame({
        "image_id": ["a_left", "a_right", "a_unknown", "h", "other"],
        "exam_id": ["abnormal", "abnormal", "abnormal", "hypothesis", "elsewhere"],
        "laterality": ["L", "droit", "", "R", ""],
        "side": ["right", "left", "left", "right", "left"],  # truth: must not be read
    }).set_index("image_id")
    assert frame_labels(images, list(images.index), table) == [0, 1, 1, -1, -1]


def test_a_table_without_the_abnormal_column_is_refused_by_name() -> None:
    with pytest.raises(InputError, match="abnormal"):
        weak_labels(TABLE.drop(columns="abnormal"))


def test_cli_labels_every_pretraining_exam_of_the_split(tmp_path) -> None:
    from typer.testing import CliRunner

    from usconvirt.cli import app

    TABLE.to_parquet(tmp_path / "sentences.parquet")
    pd.DataFrame({"exam_id": ["normal", "abnormal", "silent", "labelled"],
                  "patient_id": ["p0", "p1", "p2", "p3"],
                  "part": ["pretrain", "pretrain", "pretrain", "train"]}).to_csv(tmp_path / "split.csv")
    out = tmp_path / "weak_labels.parquet"
    result = CliRunner().invoke(app, ["weak-labels", str(tmp_path / "sentences.parquet"), "--out", str(out),
                                      "--split", str(tmp_path / "split.csv")])
    assert result.exit_code == 0, result.output
    assert "3 exams: 1 abnormal, 1 normal, 1 unknown" in result.output
    assert sorted(load_weak_labels(out)["exam_id"]) == ["abnormal", "normal", "silent"]
    assert json.loads(out.with_suffix(".json").read_text())["exam_unknown"] == 1
    result = CliRunner().invoke(app, ["weak-labels", str(tmp_path / "sentences.parquet"), "--out", str(out)])
    assert result.exit_code == 0 and "5 exams" in result.output  # without a split: the sentence table's
    assert load_weak_labels(out).set_index("exam_id").loc["plural", "left"] == "normal"
