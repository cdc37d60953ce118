"""Pairing frames with their exam's organ sentences (the paper's section 3.4), on hand-built tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from usconvirt.cli import app
from usconvirt.data.dataset import Dataset
from usconvirt.errors import InputError
from usconvirt.pairing import PairConfig, build_pairs, load_pairs

IMAGES = pd.DataFrame({
    "image_id": ["a1", "a2", "b1", "c1", "c2"],
    "exam_id": ["A", "A", "B", "C", "C"],
    "path": ["a1.png", "a2.png", "b1.png", "c1.png", "c2.png"],
    "organ": [""] * 5, "label": [""] * 5,
    "side": ["right", "left", "", "right", "right"],  # a label (synthetic truth): pairing must not read it
    "laterality": ["L", "R", "", "left", "G"],  # exported: DICOM ImageLaterality codes or burned-in words
})
EXAMS = pd.DataFrame({"exam_id": ["A", "B", "C"], "patient_id": ["p1", "p2", "p3"],
                      "report": ["Rein gauche kyste. Rein droit normal.", "Foie normal.", "Reins normaux."]})
SENTENCES = pd.DataFrame({
    "exam_id": ["A", "A", "A", "B", "C"],
    "start": [20, 0, 40, 0, 0], "end": [39, 18, 50, 12, 15],
    "text": ["Rein droit normal.", "Rein gauche kyste.", "Foie normal.", "Foie normal.", "Reins normaux."],
    "organ": ["kidney", "kidney", "liver", "liver", "kidney"],
    "cuis": [["C0022646"], ["C0022646"], [], [], ["C0022646"]],
    "laterality": ["right", "left", "unspecified", "unspecified", "both"],
    "abnormal": [False, True, False, False, False],
})
FRAMES = pd.DataFrame({"image_id": ["a1", "a2", "b1", "c1"], "cluster": ["3"] * 4,
                       "confidence": ["0.9"] * 4, "organ": ["kidney"] * 4})


def dataset(root: Path = Path("/nonexistent")) -> Dataset:
    return Dataset(root=root, exams=EXAMS, images=IMAGES)


def test_each_frame_gets_all_its_exam_organ_sentences_in_report_order() -> None:
    pairs, counts = build_pairs(dataset(), FRAMES, SENTENCES)
    assert list(pairs.columns) == ["image_id", "exam_id", "laterality", "texts"]
    by_image = dict(zip(pairs["image_id"], pairs["texts"], strict=True))
    assert by_image == {"a1": ["Rein gauche kyste.", "Rein droit normal."],
                        "a2": ["Rein gauche kyste.", "Rein droit normal."],
                        "c1": ["Reins normaux."]}
    assert counts["frames_selected"] == 4
    assert counts["frames_kept"] == 3
    assert counts["frames_without_text"] == 1  # b1: exam B never mentions the kidneys
    assert counts["exams"] == 2


def test_laterality_matching_keeps_only_sentences_about_the_frame_side() -> None:
    pairs, counts = build_pairs(dataset(), FRAMES, SENTENCES, PairConfig(match_laterality=True))
    by_image = dict(zip(pairs["image_id"], pairs["texts"], strict=True))
    assert by_image["a1"] == ["Rein gauche kyste."]
    assert by_image["a2"] == ["Rein droit normal."]
    assert by_image["c1"] == ["Reins normaux."]  # 'both' fits either side
    assert counts["frames_kept"] == 3


def test_laterality_matching_refuses_to_fall_back_on_the_side_label() -> None:
    images = IMAGES.drop(columns="laterality")
    with pytest.raises(InputError, match=r"/x/images.csv, field 'laterality'.*'side' is a label"):
        build_pairs(Dataset(root=Path("/x"), exams=EXAMS, images=images), FRAMES, SENTENCES,
                    PairConfig(match_laterality=True))
    pairs, _ = build_pairs(Dataset(root=Path("/x"), exams=EXAMS, images=images), FRAMES, SENTENCES)
    assert set(pairs["laterality"]) == {""}  # the paper's pairing needs no laterality at all


def test_frames_of_another_organ_are_ignored() -> None:
    frames = FRAMES.assign(organ=["kidney", "liver", "kidney", "kidney"])
    pairs, counts = build_pairs(dataset(), frames, SENTENCES)
    assert "a2" not in set(pairs["image_id"])
    assert counts["frames_selected"] == 3


def test_unknown_image_and_missing_column_name_the_file() -> None:
    with pytest.raises(InputError, match=r"selected\.csv, row 2, field 'image_id'.*'zz'"):
        build_pairs(dataset(), pd.DataFrame({"image_id": ["a1", "zz"]}), SENTENCES,
                    frames_source="selected.csv")
    with pytest.raises(InputError, match=r"sentences\.parquet.*laterality"):
        build_pairs(dataset(), FRAMES, SENTENCES.drop(columns="laterality"),
                    sentences_source="sentences.parquet")


def dataset_on_disk(root: Path) -> Path:
    """The test dataset written as a directory, with blank frames."""
    root.mkdir()
    for path in IMAGES["path"]:
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / path)
    EXAMS.to_csv(root / "exams.csv", index=False)
    IMAGES.to_csv(root / "images.csv", index=False)
    return root


def test_cli_writes_pairs_and_prints_the_accounting(tmp_path: Path) -> None:
    root = dataset_on_disk(tmp_path / "ds")
    FRAMES.to_csv(tmp_path / "selected.csv", index=False)
    SENTENCES.to_parquet(tmp_path / "sentences.parquet")
    out = tmp_path / "pairs.parquet"
    result = CliRunner().invoke(app, ["pair", str(root), "--frames", str(tmp_path / "selected.csv"),
                                      "--sentences", str(tmp_path / "sentences.parquet"), "--out", str(out),
                                      "--match-laterality"])
    assert result.exit_code == 0, result.output
    assert "3 frames kept, 1 frames without text, 2 exams" in result.output
    pairs = load_pairs(out)
    assert pairs.loc[pairs["image_id"] == "a2", "texts"].item() == ["Rein droit normal."]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_pairs_written_as_text_read_back_as_lists_of_sentences(tmp_path: Path, suffix: str) -> None:
    from usconvirt.io import write_table

    pairs, _ = build_pairs(dataset(), FRAMES, SENTENCES)
    write_table(pairs, tmp_path / f"pairs{suffix}")
    write_table(pairs, tmp_path / "pairs.parquet")
    # CSV and JSONL hold the list as its text, to be read back as the list, not one "sentence" per character
    assert load_pairs(tmp_path / f"pairs{suffix}")["texts"].tolist() == \
        load_pairs(tmp_path / "pairs.parquet")["texts"].tolist()


def test_pairs_texts_that_are_not_a_list_name_the_row(tmp_path: Path) -> None:
    texts = ["['Rein droit normal.']", "Rein gauche normal."]
    pd.DataFrame({"image_id": ["a1", "a2"], "texts": texts}).to_csv(tmp_path / "pairs.csv", index=False)
    with pytest.raises(InputError, match="row 2, field 'texts': expected a list of sentences"):
        load_pairs(tmp_path / "pairs.csv")


def test_pretraining_on_pairs_of_another_dataset_names_the_row(tmp_path: Path, cli) -> None:
    from usconvirt.io import write_table

    root = dataset_on_disk(tmp_path / "dataset")
    pairs, _ = build_pairs(dataset(root), FRAMES, SENTENCES)
    pairs.loc[1, "image_id"] = "z9"
    write_table(pairs, tmp_path / "pairs.parquet")
    code, message = cli("pretrain", "--pairs", tmp_path / "pairs.parquet", "--dataset", root,
                        "--out", tmp_path / "pretrain")
    assert code == 2, message
    assert "pairs.parquet, row 2, field 'image_id': image 'z9' is not in the dataset" in message
    assert not (tmp_path / "pretrain").exists()
