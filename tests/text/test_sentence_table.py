"""A sentence table written as CSV or JSONL (`usconvirt sentences --out x.csv`) reads back as Parquet does."""

from __future__ import annotations

import pandas as pd
import pytest

from usconvirt.text.sentence_table import read_sentences


@pytest.fixture
def sentences(tmp_path):
    table = pd.DataFrame({
        "exam_id": ["e1", "e1", "e2", "e3"],
        "start": [120, 8, 0, 5],  # "120" sorts before "8" as text
        "end": [150, 60, 30, 40],
        "text": ["Kyste du rein droit.", "Rein gauche normal.", "Reins normaux.", "Rein droit à revoir ?"],
        "organ": ["kidney"] * 4, "cuis": ["C0022646"] * 4,
        "laterality": ["right", "left", "both", "right"],
        "abnormal": pd.array([True, False, False, pd.NA], dtype="boolean"),
        "selected_by": ["concept"] * 4,
    })
    table.to_parquet(tmp_path / "s.parquet", index=False)
    table.to_csv(tmp_path / "s.csv", index=False)
    table.to_json(tmp_path / "s.jsonl", orient="records", lines=True, force_ascii=False)
    return tmp_path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_text_formats_read_back_with_the_parquet_types(sentences, suffix):
    expected = read_sentences(sentences / "s.parquet")
    pd.testing.assert_frame_equal(read_sentences(sentences / f"s{suffix}"), expected)


def test_weak_labels_of_a_csv_sentence_table(sentences, cli):
    code, out = cli("weak-labels", sentences / "s.csv", "--out", sentences / "w.csv")
    assert code == 0, out  # "False" in the CSV is read as a boolean, not a true string
    labels = pd.read_csv(sentences / "w.csv", keep_default_na=False).set_index("exam_id")["label"]
    assert labels.to_dict() == {"e1": "abnormal", "e2": "normal", "e3": "unknown"}


def test_a_bad_abnormal_value_names_its_row(sentences, cli):
    text = (sentences / "s.csv").read_text().replace(",False,", ",Faux,", 1)
    (sentences / "bad.csv").write_text(text)
    code, out = cli("weak-labels", sentences / "bad.csv", "--out", sentences / "w.csv")
    assert code == 2 and "bad.csv, row 2, field 'abnormal'" in out and not (sentences / "w.csv").exists()


def test_a_shifted_row_keeps_its_report_text_out_of_the_error(sentences, cli):
    # a misquoted comma pushes report text into the typed columns
    text = (sentences / "s.csv").read_text().replace(",60,Rein gauche normal.,", ",Rein gauche, normal.,", 1)
    (sentences / "shifted.csv").write_text(text)
    code, out = cli("weak-labels", sentences / "shifted.csv", "--out", sentences / "w.csv")
    assert code == 2 and "shifted.csv, row 2, field 'end'" in out and "gauche" not in out
