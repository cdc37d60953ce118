"""`usconvirt ingest` on pydicom's real ultrasound DICOMs, a corrupt file and a file carrying PHI."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from pydicom import examples
from pydicom.uid import generate_uid

from usconvirt.data import load_dataset
from usconvirt.data.deid import file_handle

KEY = "test-key-0123456789"
PHI = {
    "PatientName": "Dupont^Jeanne",
    "PatientID": "PHI-ID-987654",
    "InstitutionName": "Hopital Secret Saint-Louis",
}
PHI_ACCESSION = "ACC-PHI-5555"


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A DICOM folder (4 examples, a corrupt file, a PHI file, a study without report) and its reports."""
    root = tmp_path_factory.mktemp("export")
    dicom = root / "dicom"
    (dicom / "series1").mkdir(parents=True)
    for name in ("palette_color", "rgb_color", "ybr_color", "jpeg2k"):
        shutil.copy(getattr(examples, name).filename, dicom / "series1" / f"{name}.dcm")
    (dicom / "corrupt.dcm").write_bytes(b"this is not a DICOM file")
    phi = examples.rgb_color
    for field, value in PHI.items():
        setattr(phi, field, value)
    phi.StudyInstanceUID, phi.SOPInstanceUID = generate_uid(), generate_uid()
    phi.AccessionNumber = PHI_ACCESSION
    phi.save_as(dicom / "IMG0001")  # no suffix, as scanners write them
    no_report = examples.mr
    no_report.StudyInstanceUID = generate_uid()
    no_report.save_as(dicom / "mr.dcm")

    studies = {
        str(getattr(examples, n).StudyInstanceUID) for n in ("palette_color", "rgb_color", "ybr_color")
    }
    studies.add(str(phi.StudyInstanceUID))
    reports = pd.DataFrame(
        {
            "StudyInstanceUID": sorted(studies) + ["1.2.3.no.such.study"],
            "report": [f"Compte rendu {i} : reins normaux." for i in range(len(studies) + 1)],
        }
    )
    reports.to_csv(root / "reports.csv", index=False)
    return {
        "dicom": dicom,
        "reports": root / "reports.csv",
        "phi_study": str(phi.StudyInstanceUID),
        "raw_ids": [str(getattr(examples, n).StudyInstanceUID) for n in ("palette_color", "ybr_color")],
    }


@pytest.fixture(scope="module")
def ingested(export, tmp_path_factory, run_main):
    """Run the CLI once for the module; (dataset dir, exit code, captured output incl. the log)."""
    out = tmp_path_factory.mktemp("out") / "dataset"
    code, output = run_main("ingest", export["dicom"], "--reports", export["reports"], "--out", out,
                            "--key", KEY)
    return out, code, output


def test_ingest_writes_a_valid_dataset(ingested):
    out, code, log = ingested
    assert code == 0, log
    ds = load_dataset(out)
    assert len(ds.exams) == 4  # palette, rgb+jpeg2k (one study), ybr, the PHI copy; MR has no report
    assert len(ds.images) == 1 + 1 + 30 + 1 + 1
    assert ds.images.groupby("exam_id").size().sort_values().tolist() == [1, 1, 2, 30]
    assert ds.exams["report"].str.startswith("Compte rendu").all()
    assert (ds.images[["crop_bottom", "crop_right"]].astype(int) > 0).all().all()


def test_summary_counts_corrupt_file_and_missing_reports(ingested):
    _, _, log = ingested
    assert "7 files, 6 read, 1 skipped" in log
    assert "35 frames in 4 exams" not in log and "34 frames in 4 exams" in log
    assert "1 exams without report skipped, 1 reports without exam" in log
    # one line naming it by its handle only: export file names can be patient names
    assert sum(file_handle("corrupt.dcm", KEY) in line for line in log.splitlines()) == 1
    assert "corrupt.dcm" not in log


def test_no_phi_in_outputs_or_log(ingested, export):
    out, _, log = ingested
    secrets = [*PHI.values(), "Dupont", PHI_ACCESSION, export["phi_study"], *export["raw_ids"]]
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, (path, secret)
    for secret in secrets:
        assert secret not in log


def test_pseudonyms_are_keyed_and_stable(ingested, export, tmp_path):
    from usconvirt.data.ingest import ingest_dicom

    out, _, _ = ingested
    again = tmp_path / "again"
    other = tmp_path / "other"
    ingest_dicom(export["dicom"], export["reports"], again, KEY)
    ingest_dicom(export["dicom"], export["reports"], other, "another-key-42")
    first = load_dataset(out).exams["exam_id"].tolist()
    assert load_dataset(again).exams["exam_id"].tolist() == first
    assert not set(load_dataset(other).exams["exam_id"]) & set(first)


def test_strict_makes_corrupt_file_fatal(export, cli, tmp_path):
    out = tmp_path / "strict"
    code, message = cli(
        "ingest", export["dicom"], "--reports", export["reports"], "--out", out, "--key", KEY, "--strict"
    )
    assert code == 2 and "corrupt.dcm" in message
    assert not out.exists() and not list(tmp_path.glob(".strict*"))  # nothing half-written


def test_strict_on_truncated_pixel_data_leaves_not_even_the_folder_it_made(export, cli, tmp_path):
    dicom = tmp_path / "dicom"
    shutil.copytree(export["dicom"] / "series1", dicom)
    frame = dicom / "rgb_color.dcm"
    frame.write_bytes(frame.read_bytes()[:-5000])  # the header reads, the pixel data is cut short
    out = tmp_path / "runs" / "ingested"
    code, message = cli("ingest", dicom, "--reports", export["reports"], "--out", out, "--key", KEY,
                        "--strict", "--workers", "1")
    assert code == 2 and "rgb_color.dcm" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dicom"]


def test_strict_skips_what_holds_no_image_by_design(cli, tmp_path):
    # A CD/DVD export always carries a DICOMDIR, often a viewer's text files: no reason to stop --strict
    from pydicom.data import get_testdata_file

    dicom = tmp_path / "cd"
    (dicom / "US").mkdir(parents=True)
    shutil.copy(examples.rgb_color.filename, dicom / "US" / "IM0001")
    shutil.copy(get_testdata_file("DICOMDIR"), dicom / "DICOMDIR")
    (dicom / "AUTORUN.INF").write_text("[autorun]")
    pd.DataFrame({"StudyInstanceUID": [str(examples.rgb_color.StudyInstanceUID)],
                  "report": ["Reins normaux."]}).to_csv(tmp_path / "reports.csv", index=False)
    out = tmp_path / "dataset"
    code, message = cli("ingest", dicom, "--reports", tmp_path / "reports.csv", "--out", out, "--key", KEY,
                        "--strict")
    assert code == 0, message
    assert "2 skipped" in message and len(load_dataset(out).images) == 1


def test_link_by_accession_number(export, cli, tmp_path):
    reports = tmp_path / "reports.csv"
    pd.DataFrame({"acc": [PHI_ACCESSION], "report": ["Rein droit : kyste simple."]}).to_csv(
        reports, index=False
    )
    out = tmp_path / "acc"
    code, message = cli(
        "ingest",
        export["dicom"],
        "--reports",
        reports,
        "--out",
        out,
        "--key",
        KEY,
        "--link",
        "AccessionNumber",
        "--report-key-column",
        "acc",
    )
    assert code == 0, message
    ds = load_dataset(out)
    assert ds.exams["report"].tolist() == ["Rein droit : kyste simple."]


def test_short_key_and_existing_output_are_rejected(export, cli, tmp_path):
    code, message = cli(
        "ingest", export["dicom"], "--reports", export["reports"], "--out", tmp_path / "x", "--key", "short"
    )
    assert code == 2 and "key" in message and not (tmp_path / "x").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, message = cli(
        "ingest", export["dicom"], "--reports", export["reports"], "--out", tmp_path / "full", "--key", KEY
    )
    assert code == 2 and "--overwrite" in message
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_a_skipped_file_is_logged_by_its_handle_and_found_through_the_id_map(tmp_path, caplog):
    # PACS exports often name folders after the patient: the name may reach DEBUG only, and the id map.
    # A malformed UID holding the name too: pydicom would log it, value included, at WARNING.
    import logging
    import warnings

    from usconvirt.data.dicom import values_unvalidated
    from usconvirt.data.ingest import IngestConfig, ingest_dicom

    dicom = tmp_path / "export"
    (dicom / "DUPONT_JEAN").mkdir(parents=True)
    ds, study_uid = examples.rgb_color, "1.2.250.1.DUPONT"
    with values_unvalidated():  # this test's own writing must not log the UID either
        ds.StudyInstanceUID = study_uid
        ds.save_as(dicom / "DUPONT_JEAN" / "IM0001")
    (dicom / "DUPONT_JEAN" / "corrupt.dcm").write_bytes(b"not a DICOM file")  # unreadable header
    whole = (dicom / "DUPONT_JEAN" / "IM0001").read_bytes()
    (dicom / "DUPONT_JEAN" / "cut.dcm").write_bytes(whole[: len(whole) - 5000])  # header fine, pixels cut
    pd.DataFrame({"StudyInstanceUID": [study_uid], "report": ["Reins normaux."]}).to_csv(
        tmp_path / "reports.csv", index=False)
    id_map = tmp_path / "private" / "ids.csv"
    with caplog.at_level(logging.DEBUG, logger="usconvirt"), warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        summary = ingest_dicom(dicom, tmp_path / "reports.csv", tmp_path / "dataset", KEY,
                               IngestConfig(workers=1, id_map=id_map))
    assert (summary.skipped, summary.header_skipped, summary.exams) == (2, 1, 1)
    assert not [w for w in warned if "DUPONT" in str(w.message)]
    handles = {rel: file_handle(rel, KEY) for rel in ("DUPONT_JEAN/corrupt.dcm", "DUPONT_JEAN/cut.dcm")}
    shown = [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG]
    assert not [m for m in shown if "DUPONT" in m or "corrupt.dcm" in m or "cut.dcm" in m]
    for handle in handles.values():
        assert sum(handle in m for m in shown) == 1
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any(handles["DUPONT_JEAN/corrupt.dcm"] in m and str(dicom / "DUPONT_JEAN" / "corrupt.dcm") in m
               for m in debug)
    rows = pd.read_csv(id_map, dtype=str)
    files = rows[rows["kind"] == "file"]
    assert dict(zip(files["source_value"], files["pseudonym"], strict=True)) == handles
