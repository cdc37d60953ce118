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


def test_a_cp1252_or_folder_config_is_named_with_its_line(tmp_path):
    from usconvirt.config import load_yaml

    config = tmp_path / "run.yaml"
    config.write_bytes(b"out: runs/x\n# r\xe9sum\xe9 des r\xe9glages\nsplit: {seed: 0}\n")
    with pytest.raises(InputError, match=r"run\.yaml: not valid UTF-8 \(line 2\)"):
        load_yaml(config)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(InputError, match=r"folder\.yaml: cannot read the config"):
        load_yaml(folder)


def test_a_failed_atomic_write_leaves_no_empty_folder_it_made(tmp_path):
    from usconvirt.io import atomic_dir, atomic_path

    for atomic in (atomic_dir, atomic_path):
        with pytest.raises(InputError), atomic(tmp_path / "runs" / "new" / "out"):
            raise InputError("bad row", file="exams.csv", row=3)
        assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    with pytest.raises(InputError), atomic_dir(tmp_path / "kept" / "out"):
        raise InputError("bad row")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]  # a folder that was there stays


def test_a_study_whose_only_file_is_skipped_leaves_no_frames_folder(never_written_export, run_main, tmp_path):
    export, out = never_written_export, tmp_path / "dataset"
    code, log = run_main("ingest", export["dicom"], "--reports", export["reports"], "--out", out, "--key",
                         "bad-input-key", "--workers", "1")
    assert code == 0 and "1 skipped" in log, log
    folders = sorted((out / "frames").iterdir())
    assert len(folders) == 2 and all(any(f.iterdir()) for f in folders)


def test_the_tokenizer_replaces_a_tokenizer_but_not_a_foreign_folder_without_overwrite(cli, tmp_path):
    dataset, out = tmp_path / "ds", tmp_path / "tok"
    dataset.mkdir()
    (dataset / "exams.csv").write_text("exam_id,patient_id,report\nA,p1,Rein droit normal.\n",
                                       encoding="utf-8")
    (dataset / "images.csv").write_text("image_id,exam_id,path\n", encoding="utf-8")
    train = ("tokenizer", "--dataset", dataset, "--out", out, "--vocab-size", "60", "--min-frequency", "1")
    assert cli(*train)[0] == 0
    assert cli(*train)[0] == 0  # a rerun replaces its own tokenizer
    (out / "notes.txt").write_text("kept\n")
    code, output = cli(*train)
    assert code == 2 and "tok: output directory exists and is not empty (use --overwrite)" in output, output
    assert (out / "notes.txt").exists()
    assert cli(*train, "--overwrite")[0] == 0 and not (out / "notes.txt").exists()


def test_pair_refuses_a_sentence_of_no_exam(cli, tmp_path):
    import numpy as np
    from PIL import Image

    root = tmp_path / "ds"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a1.png")
    (root / "exams.csv").write_text("exam_id,patient_id,report\nA,p1,Rein droit normal.\n", encoding="utf-8")
    (root / "images.csv").write_text("image_id,exam_id,path,laterality\na1,A,a1.png,R\n", encoding="utf-8")
    (tmp_path / "selected.csv").write_text("image_id\na1\n")
    (tmp_path / "sentences.csv").write_text(
        "exam_id,start,end,text,organ,laterality\nA,0,18,Rein droit normal.,kidney,right\n"
        ",0,12,Rein gauche kyste.,kidney,left\n", encoding="utf-8")
    code, output = cli("pair", root, "--frames", tmp_path / "selected.csv", "--sentences",
                       tmp_path / "sentences.csv", "--out", tmp_path / "pairs.parquet")
    assert code == 2 and "sentences.csv, row 2, field 'exam_id': empty id" in output, output
    assert "kyste" not in output and not (tmp_path / "pairs.parquet").exists()
