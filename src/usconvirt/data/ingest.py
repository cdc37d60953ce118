"""Ingest a DICOM export into a dataset directory: pseudonymised exams, cleaned PNG frames, the two tables.

Frames are written after `clean_frame` (sector crop, UI and burned-in text blanked, grayscale, native
resolution): the scanner UI is where patient names and dates are burned in, so it never leaves ingest.
Exams without a report are skipped and counted (the dataset format requires a report for every exam).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image

from usconvirt.data.deid import check_key, pseudonymise
from usconvirt.data.dicom import DicomImage, read_dicom
from usconvirt.data.preprocess import clean_frame
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir, read_table, write_table

log = logging.getLogger(__name__)

LINK_FIELDS = ("StudyInstanceUID", "AccessionNumber")


@dataclass
class IngestConfig:
    """How to read a DICOM export and link it to reports."""

    link: str = "StudyInstanceUID"  # the DICOM field that the reports table is keyed by
    report_key_column: str | None = None  # column of the reports table holding that key (default: `link`)
    report_column: str = "report"
    strict: bool = False  # an unreadable file is fatal instead of skipped
    overwrite: bool = False


@dataclass(frozen=True)
class IngestSummary:
    files: int
    read: int
    skipped: int
    frames: int
    exams: int
    exams_without_report: int
    reports_without_exam: int


def ingest_dicom(dicom_dir: str | Path, reports: str | Path, out: str | Path, key: str,
                 config: IngestConfig | None = None) -> IngestSummary:
    """Read every file under `dicom_dir`, link studies to `reports`, write a dataset to `out`."""
    config = config or IngestConfig()
    key_bytes = check_key(key)
    dicom_dir, reports = Path(dicom_dir), Path(reports)
    if config.link not in LINK_FIELDS:
        raise InputError(f"unknown link field '{config.link}', expected one of {', '.join(LINK_FIELDS)}",
                         field="link")
    if not dicom_dir.is_dir():
        raise InputError("DICOM directory does not exist", file=dicom_dir)
    report_of = _read_reports(reports, config.report_key_column or config.link, config.report_column)

    files = sorted(p for p in dicom_dir.rglob("*") if p.is_file())
    studies: dict[str, list[tuple[Path, DicomImage]]] = defaultdict(list)
    skipped = 0
    for path in files:
        try:
            image = read_dicom(path)
        except InputError as err:
            if config.strict:
                raise
            skipped += 1
            log.warning("skipped unreadable file: %s", err)
            continue
        if not image.study_uid:
            if config.strict:
                raise InputError("no StudyInstanceUID: cannot group the frame into an exam", file=path)
            skipped += 1
            log.warning("skipped file without StudyInstanceUID %s", path.relative_to(dicom_dir))
            continue
        studies[image.study_uid].append((path, image))

    exam_rows, image_rows, without_report, linked = [], [], 0, set()
    with atomic_dir(out, overwrite=config.overwrite) as tmp:
        for study_uid in sorted(studies):
            items = studies[study_uid]
            exam_id = pseudonymise(study_uid, key_bytes, "exam-")
            link_value = study_uid if config.link == "StudyInstanceUID" else items[0][1].accession_number
            report = report_of.get(link_value, "")
            if not report.strip():
                without_report += 1
                log.info("exam %s has no report: skipped", exam_id)
                continue
            linked.add(link_value)
            patient_raw = next((img.patient_id for _, img in items if img.patient_id), "")
            patient_id = pseudonymise(patient_raw or f"study:{study_uid}", key_bytes, "patient-")
            exam_rows.append({"exam_id": exam_id, "patient_id": patient_id, "report": report})
            for path, image in items:
                image_rows.extend(_write_frames(tmp, exam_id, path.relative_to(dicom_dir), image, key_bytes))
        if not exam_rows:
            raise InputError(f"no exam could be linked to a report ({len(studies)} studies, {skipped} files "
                             f"skipped); check --link and --report-key-column", file=reports)
        write_table(pd.DataFrame(exam_rows, columns=["exam_id", "patient_id", "report"]), tmp / "exams.csv")
        write_table(pd.DataFrame(image_rows, columns=["image_id", "exam_id", "path", "organ", "label", "side",
                                                      "crop_top", "crop_left", "crop_bottom", "crop_right"]),
                    tmp / "images.csv")
    summary = IngestSummary(files=len(files), read=len(files) - skipped, skipped=skipped,
                            frames=len(image_rows), exams=len(exam_rows), exams_without_report=without_report,
                            reports_without_exam=len(set(report_of) - linked))
    log.info("ingest: %s", summary)
    return summary


def _read_reports(path: Path, key_column: str, report_column: str) -> dict[str, str]:
    """Reports keyed by the link value; duplicates and missing columns are input errors."""
    table = read_table(path)
    for column in (key_column, report_column):
        if column not in table.columns:
            raise InputError(f"missing column '{column}'; found {', '.join(map(str, table.columns))}",
                             file=path, field=column)
    keys = table[key_column].astype(str).str.strip()
    duplicated = keys.duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0]) + 1
        raise InputError("duplicate report key", file=path, row=row, field=key_column)
    return dict(zip(keys, table[report_column].fillna("").astype(str), strict=True))


def _write_frames(root: Path, exam_id: str, rel_path: Path, image: DicomImage, key: bytes) -> list[dict]:
    """Clean and write every frame of one file as PNG; the image rows for them."""
    # The SOP Instance UID names the file uniquely; the relative path stands in when it is missing
    # (folder names can hold patient names, so neither is written raw).
    source = pseudonymise(image.sop_instance_uid or f"path:{rel_path.as_posix()}", key, "img-")
    rows = []
    for index, frame in enumerate(image.frames):
        crop, (top, left, bottom, right) = clean_frame(frame)
        image_id = f"{source}-{index:03d}"
        rel = Path("frames") / exam_id / f"{image_id}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(root / rel)
        rows.append({"image_id": image_id, "exam_id": exam_id, "path": rel.as_posix(), "organ": "",
                     "label": "", "side": "", "crop_top": top, "crop_left": left, "crop_bottom": bottom,
                     "crop_right": right})
    return rows
