"""Ingest of a PACS-style export: resume after an interruption, shards + merge, report tables of any
dialect, annotations keyed by the team's ids, the id map, studies without a report, progress lines."""

from __future__ import annotations

import json
import logging
import shutil
import signal

import pandas as pd
import pytest

from usconvirt.data import dicom as dicom_module
from usconvirt.data import ingest as ingest_module
from usconvirt.data.ingest import IngestConfig, ingest_dicom
from usconvirt.data.merge import merge_shards
from usconvirt.errors import InputError, Interrupted
from usconvirt.io import read_table

KEY = "team-secret-key-42"
REAL_INGEST_STUDY = ingest_module.ingest_study


def run(export, out, **options):
    config = IngestConfig(link="AccessionNumber", **{"workers": 1, **options})
    return ingest_dicom(export["dicom"], export["reports"], out, KEY, config)


def snapshot(dataset, *, counts: bool = True):
    """Every file of a dataset directory, by relative path, as bytes (`counts=False`: not ingest.json)."""
    files = sorted(p for p in dataset.rglob("*") if p.is_file() and (counts or p.name != "ingest.json"))
    return {p.relative_to(dataset).as_posix(): p.read_bytes() for p in files}


def count_ingest_study_calls(monkeypatch) -> list[str]:
    """The exam ids `ingest_study` is called for from now on."""
    calls = []

    def counted(study, root, **kw):
        calls.append(study.exam_id)
        return REAL_INGEST_STUDY(study, root, **kw)

    monkeypatch.setattr(ingest_module, "ingest_study", counted)
    return calls


@pytest.fixture(scope="module")
def reference(us_export, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "dataset"
    summary = run(us_export, out, workers=2, labels=us_export["labels"])
    return out, summary


def test_semicolon_cp1252_reports_linked_by_accession(reference):
    out, summary = reference
    exams = read_table(out / "exams.csv")
    assert len(exams) == 4 and summary.exams == 4 and summary.frames == 8
    assert exams["report"].str.contains("échogénicité préservée").all()  # cp1252 decoded, `;` split
    # The empty report is one exam without report, not also a report without exam.
    assert (summary.exams_without_report, summary.empty_reports, summary.reports_without_exam) == (2, 1, 1)
    assert (summary.files, summary.skipped) == (14, 2)  # DICOMDIR stub and Thumbs.db


def test_the_side_a_dicom_file_records_reaches_images_laterality(reference):
    out, _ = reference
    images = read_table(out / "images.csv")
    sides = images.groupby("exam_id")["laterality"].agg(lambda s: sorted(s.fillna("")))
    # two studies recorded R and L, "U" (unpaired) is no side; pair --match-laterality reads this column
    assert sorted(sides.map(tuple)) == [("", ""), ("", ""), ("left", "right"), ("left", "right")]


def test_labels_keyed_by_sop_instance_uid(reference, us_export):
    out, summary = reference
    images = read_table(out / "images.csv")
    labelled = images[images["organ"] != ""]
    assert sorted(labelled["organ"]) == ["kidney", "liver"] and summary.labelled_frames == 2
    assert labelled.set_index("organ").loc["kidney", ["label", "side"]].tolist() == ["abnormal", "right"]
    assert summary.labels_without_frame == 1  # the unknown SOPInstanceUID


def test_labels_keyed_by_accession_and_instance_number(us_export, tmp_path):
    summary = run(us_export, tmp_path / "d", labels=us_export["labels_acc"])
    images = read_table(tmp_path / "d" / "images.csv")
    assert summary.labelled_frames == 1 and images["label"].tolist().count("normal") == 1


def test_interrupted_ingest_resumes_without_redoing_exams(us_export, reference, tmp_path, monkeypatch):
    out = tmp_path / "dataset"
    calls = []

    def dies_on_third(study, root, **kw):
        calls.append(study.exam_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a kill would, mid-export
        return REAL_INGEST_STUDY(study, root, **kw)

    monkeypatch.setattr(ingest_module, "ingest_study", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(us_export, out, labels=us_export["labels"])
    assert not out.exists()  # no half-written dataset; the journal waits beside it
    calls = count_ingest_study_calls(monkeypatch)
    summary = run(us_export, out, labels=us_export["labels"])
    assert len(calls) == 2 and summary.resumed_exams == 2  # only the exams not committed before
    assert snapshot(out, counts=False) == snapshot(reference[0], counts=False)
    counts = json.loads((out / "ingest.json").read_text())["summary"]
    assert counts | {"resumed_exams": 0} == json.loads((reference[0] / "ingest.json").read_text())["summary"]
    assert not list(tmp_path.glob(".dataset.partial"))


@pytest.mark.parametrize("where", ["header", "pixels", "clean"])
def test_a_kill_while_a_file_is_read_stops_the_ingest_not_skips_the_file(us_export, tmp_path, monkeypatch,
                                                                         where):
    # The CLI's SIGTERM handler raises Interrupted in whatever runs, here pydicom or the frame cleaning,
    # inside the `except Exception` that skips a corrupt file.
    real_dcmread = dicom_module.pydicom.dcmread

    def dcmread(path, **kwargs):
        if kwargs.get("stop_before_pixels", False) == (where == "header"):
            raise Interrupted(signal.SIGTERM)
        return real_dcmread(path, **kwargs)

    def clean_frame(frame):
        raise Interrupted(signal.SIGTERM)

    if where == "clean":
        monkeypatch.setattr(ingest_module, "clean_frame", clean_frame)
    else:
        monkeypatch.setattr(dicom_module.pydicom, "dcmread", dcmread)
    with pytest.raises(Interrupted):
        run(us_export, tmp_path / "d")
    assert not (tmp_path / "d").exists()  # no dataset missing the file the kill hit


def test_two_shards_and_merge_give_the_same_dataset(us_export, reference, tmp_path, cli):
    shards = [tmp_path / f"shard{i}" for i in range(2)]
    sizes = [run(us_export, shard, shard=f"{i}/2", labels=us_export["labels"],
                 id_map=tmp_path / f"ids{i}.csv").exams for i, shard in enumerate(shards)]
    assert sum(sizes) == 4 and min(sizes) > 0  # the 4 exams split across both shards
    ids = pd.concat([pd.read_csv(tmp_path / f"ids{i}.csv", dtype=str) for i in range(2)])
    assert sorted(ids.loc[ids["kind"] == "file", "source_value"]) == ["DICOMDIR", "Thumbs.db"]  # once each
    summary = merge_shards(shards, tmp_path / "merged")
    assert snapshot(tmp_path / "merged") == snapshot(reference[0])
    assert summary == reference[1]
    with pytest.raises(InputError, match="missing \\[1\\]"):
        merge_shards(shards[:1], tmp_path / "partial")
    code, message = cli("merge", *shards, "--out", tmp_path / "by_cli")
    assert code == 0 and "8 frames in 4 exams from 2 shards" in message
    code, message = cli("merge", shards[0], shards[0], "--out", tmp_path / "twice")
    assert code == 2 and "repeated [0]" in message and not (tmp_path / "twice").exists()
    grown = tmp_path / "grown"  # shard 1 as if rerun after a file was added to the export
    shutil.copytree(shards[1], grown)
    info = json.loads((grown / "ingest.json").read_text())
    info["summary"]["files"] += 1
    (grown / "ingest.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match="another export.*files differ"):
        merge_shards([shards[0], grown], tmp_path / "mixed")


def test_id_map_is_written_outside_the_dataset_only(us_export, tmp_path):
    id_map = tmp_path / "id_map.csv"
    run(us_export, tmp_path / "d", id_map=id_map)
    table = pd.read_csv(id_map, dtype=str)
    raw = us_export["raw"]
    assert set(raw["accession"][:4]) <= set(table["source_value"]) and set(raw["patient"][:4]) <= set(
        table["source_value"])
    assert (id_map.stat().st_mode & 0o077) == 0  # readable by its owner only
    dataset = b"".join(snapshot(tmp_path / "d").values())
    for secret in raw["accession"] + raw["sop"] + raw["study"] + raw["patient"] + ["DUPONT"]:
        assert secret.encode() not in dataset
    with pytest.raises(InputError, match="outside the dataset"):
        run(us_export, tmp_path / "e", id_map=tmp_path / "e" / "ids.csv")


def test_allow_missing_report_keeps_the_studies(us_export, tmp_path):
    summary = run(us_export, tmp_path / "d", allow_missing_report=True)
    exams = read_table(tmp_path / "d" / "exams.csv")
    assert summary.exams == 6 and (exams["report"] == "").sum() == 2
    ingest_dicom(us_export["dicom"], None, tmp_path / "no_reports", KEY,
                 IngestConfig(workers=1, allow_missing_report=True))
    assert len(read_table(tmp_path / "no_reports" / "exams.csv")) == 6


def test_existing_output_is_refused_before_reading_the_export(us_export, tmp_path, monkeypatch):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    monkeypatch.setattr(ingest_module, "scan_export", lambda *a, **k: pytest.fail("export was read"))
    with pytest.raises(InputError, match="--overwrite"):
        run(us_export, tmp_path / "full")


def test_forced_encoding_and_bad_label_value(us_export, tmp_path):
    with pytest.raises(InputError, match="not valid utf-8"):  # forced on cp1252 bytes: no silent mojibake
        run(us_export, tmp_path / "a", encoding="utf-8")
    bad = tmp_path / "labels.csv"
    bad.write_text("SOPInstanceUID,label\n1.2.3,abnormall\n")
    with pytest.raises(InputError, match="row 1.*field 'label'"):
        run(us_export, tmp_path / "b", labels=bad)


def test_progress_reaches_a_log_file(us_export, tmp_path, monkeypatch, caplog):
    from usconvirt.data.progress import ProgressReporter

    monkeypatch.setattr(ProgressReporter.__init__, "__kwdefaults__", {"interval": 0.0, "terminal": False})
    with caplog.at_level(logging.INFO, logger="usconvirt.progress"):
        run(us_export, tmp_path / "d")
    lines = [r.getMessage() for r in caplog.records if r.name == "usconvirt.progress"]
    assert any(line.startswith("ingest: ") and "frames/s" in line and "left" in line for line in lines)


def test_sigkill_mid_export_then_rerun(us_export, reference, tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    out = tmp_path / "dataset"
    journal = tmp_path / ".dataset.partial" / "journal.jsonl"
    args = ["ingest", us_export["dicom"], "--reports", us_export["reports"], "--out", out, "--key", KEY,
            "--link", "AccessionNumber", "--labels", us_export["labels"], "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "usconvirt", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the ingest finished before it could be killed")
    committed = journal.read_text().count("\n")
    assert not out.exists() and 1 <= committed < 4
    calls = count_ingest_study_calls(monkeypatch)
    run(us_export, out, labels=us_export["labels"])
    assert len(calls) == 4 - committed  # the committed exams are not redone
    assert snapshot(out, counts=False) == snapshot(reference[0], counts=False)


def test_resume_with_other_reports_keeps_no_stray_frames(us_export, tmp_path, monkeypatch):
    def dies_on_fourth(study, root, **kw):
        if len(list((tmp_path / ".d.partial" / "dataset" / "frames").glob("*"))) == 3:
            raise KeyboardInterrupt
        return REAL_INGEST_STUDY(study, root, **kw)

    monkeypatch.setattr(ingest_module, "ingest_study", dies_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        run(us_export, tmp_path / "d")
    monkeypatch.setattr(ingest_module, "ingest_study", REAL_INGEST_STUDY)
    fewer = tmp_path / "fewer.csv"
    lines = us_export["reports"].read_bytes().split(b"\r\n")
    fewer.write_bytes(b"\r\n".join(lines[:2]))  # the header and one exam's report
    summary = ingest_dicom(us_export["dicom"], fewer, tmp_path / "d", KEY,
                           IngestConfig(link="AccessionNumber", workers=1))
    exams = read_table(tmp_path / "d" / "exams.csv")["exam_id"].tolist()
    assert summary.exams == 1 and sorted(p.name for p in (tmp_path / "d" / "frames").iterdir()) == exams
