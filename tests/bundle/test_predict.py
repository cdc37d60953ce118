"""Export a tiny run, delete it, predict on a fresh DICOM export: outputs, PHI, corrupt files, agreement."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pydicom
import pytest

from usconvirt.data.deid import file_handle
from usconvirt.evaluation.metrics import detection_metrics

KEY = "bundle-test-key-42"  # the conftest's deid_key

PHI_FIELDS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID",
              "SOPInstanceUID", "InstitutionName", "ReferringPhysicianName")


def _phi(export) -> set[str]:
    secrets = set()
    for path in (export / "frames").rglob("*.dcm"):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        secrets |= {str(ds.get(f, "")) for f in PHI_FIELDS} | {str(ds.PatientName).split("^")[0]}
    return {s for s in secrets if len(s) >= 4}


def test_predict_writes_one_row_per_study_and_names_the_corrupt_files(predicted, dicom_export):
    out, _, code, log = predicted
    assert code == 0, log
    frames = pd.read_csv(out / "frames.csv")
    exams = pd.read_csv(out / "exams.csv", keep_default_na=False)
    assert list(frames.columns) == ["image_id", "exam_id", "organ", "organ_confidence", "side", "p_abnormal",
                                    "gradcam", "zero_shot_1"]
    studies = pd.read_csv(dicom_export / "reports_by_study.csv")["StudyInstanceUID"]
    assert len(exams) == len(studies) == exams["exam_id"].nunique()
    assert len(frames) == len(pd.read_csv(dicom_export / "images.csv"))  # every readable frame
    assert frames["p_abnormal"].between(0, 1).all()
    assert set(exams["prediction"]) <= {"normal", "abnormal", "no kidney frame"}
    kidney = frames[frames["organ"] == "kidney"].groupby("exam_id").size()
    assert exams.set_index("exam_id")["kidney_frames"].to_dict() == kidney.reindex(exams["exam_id"],
                                                                                   fill_value=0).to_dict()
    for rel in ("frames/DUPONT_JEAN/broken.dcm", "frames/magic_noise"):  # no pixels, no parseable dataset:
        handle = file_handle(rel, KEY)  # "unreadable", not "ignored"; named by handle, never by path
        assert sum(handle in line for line in log.splitlines()) == 1, rel
        assert rel.rsplit("/", 1)[-1] not in log
    assert "DUPONT" not in log
    assert "2 unreadable skipped" in log and "5 ignored" in log  # the export's tables are not DICOM


def test_no_phi_in_outputs_or_log_and_the_id_map_routes_back(predicted, dicom_export):
    out, id_map, _, log = predicted
    secrets = _phi(dicom_export)
    assert len(secrets) > 20
    for path in out.rglob("*"):
        data = path.read_bytes() if path.is_file() else b""
        for secret in secrets:
            assert secret.encode() not in data, (path.name, secret)
    for secret in secrets:
        assert secret not in log
    table = pd.read_csv(id_map, dtype=str)
    studies = table[table["source_field"] == "StudyInstanceUID"]
    exams = pd.read_csv(out / "exams.csv", dtype=str)
    assert set(studies["pseudonym"]) == set(exams["exam_id"])
    assert set(studies["source_value"]) == set(pd.read_csv(dicom_export / "reports_by_study.csv",
                                                           dtype=str)["StudyInstanceUID"])
    files = table[table["kind"] == "file"]  # the skipped files' handles lead back to their paths
    assert dict(zip(files["source_value"], files["pseudonym"], strict=True)) == {
        rel: file_handle(rel, KEY) for rel in ("frames/DUPONT_JEAN/broken.dcm", "frames/magic_noise")}


def test_strict_stops_at_the_corrupt_file_and_writes_nothing(exported, dicom_export, cli, tmp_path):
    code, message = cli("predict", exported["bundle"], dicom_export, "--out", tmp_path / "out", "--key", KEY,
                        "--strict", "--workers", "1")
    assert code == 2 and "broken.dcm" in message
    assert not (tmp_path / "out").exists()


def test_exam_rows_of_the_test_split_agree_with_evaluate(exported, cli, tmp_path):
    kept = exported["kept"]
    code, message = cli("predict", exported["bundle"], kept / "dataset", "--out", tmp_path / "out",
                        "--organ-from", "dataset", "--workers", "1", "--no-maps")
    assert code == 0, message
    split = pd.read_csv(kept / "split.csv", dtype=str)
    images = pd.read_csv(kept / "dataset" / "images.csv", dtype=str, keep_default_na=False)
    test_exams = set(split.loc[split["part"] == "test", "exam_id"])
    exams = pd.read_csv(tmp_path / "out" / "exams.csv")
    exams = exams[exams["exam_id"].isin(test_exams)].set_index("exam_id").sort_index()
    truth = images[images["label"].isin(["normal", "abnormal"])].groupby("exam_id")["label"].agg(
        lambda y: int((y == "abnormal").any()))
    labels = truth.reindex(exams.index).to_numpy()
    got = detection_metrics(labels, (exams["prediction"] == "abnormal").to_numpy(), exams["p_abnormal"])
    figures = json.loads((kept / "evaluation" / "metrics.json").read_text())["runs"]["random"]["exam_level"]
    assert figures["exam"]["units"] == len(exams)
    for name in ("sensitivity", "specificity", "roc_auc"):
        expected = figures["exam"][name]["value"]
        value = float(np.ravel(got[name])[0])
        assert (expected is None and np.isnan(value)) or value == pytest.approx(expected, abs=1e-5), name
    assert "kidney" in figures  # the synthetic dataset knows each kidney frame's side


def test_organ_from_dataset_leaves_frames_without_an_organ_out_of_the_exam(exported, cli, tmp_path,
                                                                          monkeypatch):
    from usconvirt.bundle.load import load_bundle

    organ_model = type(load_bundle(exported["bundle"]).organ_model)
    # the dataset's organ column decides: the organ model runs on no frame
    monkeypatch.setattr(organ_model, "probabilities", lambda *a, **k: pytest.fail("organ model ran"))
    dataset = tmp_path / "dataset"
    shutil.copytree(exported["kept"] / "dataset", dataset)
    images = pd.read_csv(dataset / "images.csv", dtype=str, keep_default_na=False)
    unlabelled = images["exam_id"] == images["exam_id"].iloc[0]
    images.loc[unlabelled, "organ"] = ""
    images.to_csv(dataset / "images.csv", index=False)
    code, message = cli("predict", exported["bundle"], dataset, "--out", tmp_path / "out",
                        "--organ-from", "dataset", "--workers", "1", "--no-maps")
    assert code == 0, message
    frames = pd.read_csv(tmp_path / "out" / "frames.csv", dtype={"organ": str}, keep_default_na=False)
    exams = pd.read_csv(tmp_path / "out" / "exams.csv").set_index("exam_id")
    assert (frames.loc[frames["exam_id"] == images["exam_id"].iloc[0], "organ"] == "").all()
    assert exams.loc[images["exam_id"].iloc[0], "prediction"] == "no kidney frame"
    assert (frames["organ_confidence"] == "").all()
    assert (frames.loc[frames["organ"] != "", "organ"] == images.loc[~unlabelled, "organ"].to_numpy()).all()


def test_png_files_are_grouped_by_folder(exported, cli, tmp_path):
    kept = exported["kept"]
    images = pd.read_csv(kept / "dataset" / "images.csv", dtype=str).head(3)
    for i, rel in enumerate(images["path"]):
        target = tmp_path / "pngs" / f"exam{i % 2}" / f"{i}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((kept / "dataset" / rel).read_bytes())
    code, message = cli("predict", exported["bundle"], tmp_path / "pngs", "--out", tmp_path / "out",
                        "--key", KEY, "--workers", "1", "--no-maps")
    assert code == 0, message
    assert len(pd.read_csv(tmp_path / "out" / "exams.csv")) == 2
    # each folder given on its own (both hold a frame named 1.png), and a lone file, are exams too
    pngs = tmp_path / "pngs"
    (pngs / "exam0" / "1.png").write_bytes((pngs / "exam1" / "1.png").read_bytes())
    code, message = cli("predict", exported["bundle"], pngs / "exam0", pngs / "exam1",
                        pngs / "exam1" / "1.png", "--out", tmp_path / "apart", "--key", KEY,
                        "--workers", "1", "--no-maps")
    assert code == 0, message
    frames = pd.read_csv(tmp_path / "apart" / "frames.csv")
    assert frames["exam_id"].nunique() == 2
    assert frames["image_id"].duplicated().tolist() == [False] * 4 + [True]  # the lone file is listed twice
    code, message = cli("predict", exported["bundle"], tmp_path / "pngs", "--out", tmp_path / "nokey")
    assert code == 2 and "key" in message


def test_strict_stops_at_a_dicom_magic_file_whose_dataset_cannot_be_parsed(exported, dicom_export, cli,
                                                                          tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    good = next(p for p in sorted((dicom_export / "frames").rglob("*.dcm")) if p.name != "broken.dcm")
    (export / "good.dcm").write_bytes(good.read_bytes())
    (export / "magic_noise").write_bytes((dicom_export / "frames" / "magic_noise").read_bytes())
    code, message = cli("predict", exported["bundle"], export, "--out", tmp_path / "out", "--key", KEY,
                        "--strict", "--workers", "1", "--no-maps")
    assert code == 2 and "magic_noise" in message and "cannot be parsed" in message
    assert not (tmp_path / "out").exists()


def test_a_skipped_file_path_reaches_the_debug_lines_only(exported, dicom_export, run_main, tmp_path):
    export = tmp_path / "export"
    (export / "DUPONT_JEAN").mkdir(parents=True)
    good = next(p for p in sorted((dicom_export / "frames").rglob("*.dcm")) if p.name != "broken.dcm")
    (export / "DUPONT_JEAN" / "IM0001").write_bytes(good.read_bytes())
    (export / "DUPONT_JEAN" / "corrupt.dcm").write_bytes(b"DICM but not really a DICOM file")
    code, log = run_main("--verbose", "predict", exported["bundle"], export, "--out", tmp_path / "out",
                         "--key", KEY, "--workers", "1", "--no-maps")
    assert code == 0, log
    handle = file_handle("DUPONT_JEAN/corrupt.dcm", KEY)
    named = [line for line in log.splitlines() if "DUPONT" in line or "corrupt.dcm" in line]
    assert named and all(" DEBUG " in line for line in named), named
    assert any(handle in line and "DUPONT_JEAN/corrupt.dcm" in line for line in named)
    assert any(" WARNING " in line and handle in line for line in log.splitlines())


def test_no_never_written_field_reaches_the_outputs_or_the_log(exported, never_written_export, leaked_secrets,
                                                                run_main, tmp_path):
    # docs/use.md: no name, raw id or date is written to OUT or logged; every NEVER_WRITTEN field is filled
    secrets, out = never_written_export["secrets"], tmp_path / "out"
    with warnings.catch_warnings(record=True) as warned:  # pytest keeps warnings from stderr: read them
        warnings.simplefilter("always")
        code, log = run_main("predict", exported["bundle"], never_written_export["dicom"], "--out", out,
                             "--key", KEY, "--id-map", tmp_path / "private" / "ids.csv", "--workers", "1",
                             "--review")
    log += "\n".join(str(w.message) for w in warned)
    assert code == 0, log
    assert len(pd.read_csv(out / "frames.csv")) == 2 and "1 unreadable skipped" in log
    assert leaked_secrets(out, secrets) == []
    assert [(field, value) for value, field in secrets.items() if value in log] == []
