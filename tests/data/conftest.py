"""Fixtures for the data tests: an in-process CLI runner and a small on-disk dataset builder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def write_dataset() -> Callable[..., Path]:
    """The dataset-writing helper below, as a fixture (test modules do not import each other)."""
    return _write_dataset


@pytest.fixture
def dataset_rows() -> Callable[..., tuple[list[dict], list[dict]]]:
    """The row-building helper below, as a fixture."""
    return _small_dataset_rows


def _write_dataset(
    root: Path, exams: list[dict], images: list[dict], *, no_file: tuple[str, ...] = ()
) -> Path:
    """A dataset directory with the given rows and a small PNG for every image path inside it."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    for row in images:
        path = root / row.get("path", "")
        if "path" in row and path.resolve().is_relative_to(root.resolve()) and row["path"] not in no_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path)
    return root


def _small_dataset_rows(n_patients: int = 12, exams_per_patient: int = 2) -> tuple[list[dict], list[dict]]:
    """Exams and two images per exam; every image labeled."""
    exams, images = [], []
    labels = ("normal", "abnormal", "absent")
    for p in range(n_patients):
        for e in range(exams_per_patient):
            exam_id = f"e{p}-{e}"
            exams.append({"exam_id": exam_id, "patient_id": f"p{p}", "report": "Reins de taille normale."})
            for i in range(2):
                images.append(
                    {
                        "image_id": f"{exam_id}-{i}",
                        "exam_id": exam_id,
                        "path": f"frames/{exam_id}-{i}.png",
                        "organ": "kidney",
                        "label": labels[(p + e + i) % 3],
                    }
                )
    return exams, images


@pytest.fixture(scope="session")
def us_export(tmp_path_factory) -> dict:
    """A PACS-style export of 6 studies x 2 ultrasound files, with PHI in the headers and folder names,
    a DICOMDIR and a non-DICOM file; reports as `;`-separated cp1252 keyed by AccessionNumber (one
    empty, one study without a row) and annotations keyed by SOPInstanceUID and accession + instance."""
    from pydicom import examples
    from pydicom.uid import generate_uid

    root = tmp_path_factory.mktemp("pacs")
    dicom = root / "export"
    raw: dict[str, list[str]] = {"study": [], "sop": [], "accession": [], "patient": [], "name": []}
    for s in range(6):
        folder = dicom / f"DUPONT_{s}" / "US"  # patient names in folder names, as some PACS write them
        folder.mkdir(parents=True)
        # Deterministic UIDs: the pseudonyms, and so the shards a test expects, are the same every run.
        study_uid = generate_uid(entropy_srcs=[f"pacs-study-{s}"])
        accession, patient = f"ACC{s:05d}", f"IPP-SECRET-{s // 2}"
        raw["study"].append(study_uid), raw["accession"].append(accession), raw["patient"].append(patient)
        for i in range(2):
            ds = examples.rgb_color
            ds.StudyInstanceUID = study_uid
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"pacs-sop-{s}-{i}"])
            ds.AccessionNumber, ds.PatientID, ds.InstanceNumber = accession, patient, i + 1
            ds.PatientName = f"DUPONT^JEANNE{s}"
            # the side some scanners record: right then left in studies 0-1, unpaired ("U") in the others
            ds.ImageLaterality = ("R", "L")[i] if s < 2 else "U"
            ds.save_as(folder / f"IM{i:04d}")
            raw["sop"].append(str(ds.SOPInstanceUID))
    (dicom / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")  # a broken index: skipped like any unreadable
    (dicom / "Thumbs.db").write_bytes(b"not dicom")
    reports = root / "reports.csv"
    rows = [f"{acc};Rein droit : kyste cortical de {s + 1} mm, échogénicité préservée."
            for s, acc in enumerate(raw["accession"][:4])]
    rows.append(f"{raw['accession'][4]};")  # an empty report; study 5 has no row at all
    rows.append("ACC-NO-SUCH-EXAM;Foie normal.")
    reports.write_bytes(("AccessionNumber;report\r\n" + "\r\n".join(rows) + "\r\n").encode("cp1252"))
    labels = root / "labels.csv"
    pd.DataFrame({"SOPInstanceUID": [raw["sop"][0], raw["sop"][3], "1.2.3.unknown"],
                  "organ": ["kidney", "liver", "kidney"], "label": ["abnormal", "", "normal"],
                  "side": ["right", "", "left"]}).to_csv(labels, index=False)
    labels_acc = root / "labels_acc.csv"
    pd.DataFrame({"AccessionNumber": [raw["accession"][1]], "InstanceNumber": ["02"], "frame": ["1"],
                  "organ": ["kidney"], "label": ["normal"]}).to_csv(labels_acc, sep="\t", index=False)
    return {"dicom": dicom, "reports": reports, "labels": labels, "labels_acc": labels_acc, "raw": raw}
