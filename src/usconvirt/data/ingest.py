"""Ingest a DICOM export into a dataset directory: pseudonymised exams, cleaned PNG frames, the two tables.

Two passes, so memory stays bounded whatever the export's size:
1. `scan_export` reads headers only (no pixels) to group files into studies; reports and annotations are
   linked to them by their raw ids, which never leave memory.
2. `ingest_study` decodes, cleans and writes the frames of one study, one file at a time, in worker
   processes. Each finished study is committed to a journal beside the output, so a rerun after a kill
   resumes where it stopped; the tables are written, and the directory renamed into place, at the end.

Frames are written after `clean_frame` (sector crop, UI and burned-in text blanked, grayscale, native
resolution): the scanner UI is where patient names and dates are burned in, so it never leaves ingest.
Exams without a report are skipped and counted, or kept with an empty report (`allow_missing_report`,
for prediction). `--shard I/N` ingests the studies of one shard; `usconvirt merge` combines the shards.

Reusable pieces (e.g. for prediction): `scan_export` -> `Study` objects (pseudonymous ids, raw ids kept
out of `repr`), `study_frames(study)` -> cleaned frames in memory, `ingest_study(study, root)` -> PNGs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from usconvirt.data.deid import check_key, file_handle, log_skipped_file, pseudonymise
from usconvirt.data.dicom import DicomHeader, NotAnImage, read_dicom, read_dicom_header
from usconvirt.data.frame_labels import FrameLabels, read_frame_labels
from usconvirt.data.preprocess import clean_frame
from usconvirt.data.progress import ProgressReporter
from usconvirt.data.shard import Shard, parse_shard
from usconvirt.data.user_tables import read_user_table
from usconvirt.data.workers import process_map
from usconvirt.errors import InputError
from usconvirt.io import atomic_path, parents_made, require_columns, write_table

log = logging.getLogger(__name__)

LINK_FIELDS = ("StudyInstanceUID", "AccessionNumber")
EXAM_COLUMNS = ["exam_id", "patient_id", "report"]
# laterality: the side the DICOM file records (ImageLaterality/Laterality), for pair --match-laterality
IMAGE_COLUMNS = ["image_id", "exam_id", "path", "organ", "label", "side", "laterality",
                 "crop_top", "crop_left", "crop_bottom", "crop_right"]
SUMMARY_FILE = "ingest.json"  # counts only, no ids: merge adds the shards' counts up
JOURNAL_VERSION = 2  # a partial ingest written by another version is started afresh
HEADER_CHUNK = 256  # files per header-reading task
PNG_COMPRESSION = 1  # zlib level 1: 3x faster to write than Pillow's 6, files ~10% larger


@dataclass
class IngestConfig:
    """How to read a DICOM export and link it to reports and annotations."""

    link: str = "StudyInstanceUID"  # the DICOM field that the reports table is keyed by
    report_key_column: str | None = None  # column of the reports table holding that key (default: `link`)
    report_column: str = "report"
    encoding: str | None = None  # of the reports/labels tables; None: sniffed (UTF-8, else cp1252)
    labels: str | Path | None = None  # annotations keyed by SOPInstanceUID or accession + instance number
    id_map: str | Path | None = None  # pseudonym <-> source id table, written outside the dataset
    allow_missing_report: bool = False  # keep studies without a report (report left empty)
    shard: str | None = None  # "I/N": only the studies of shard I of N
    workers: int = 0  # processes decoding frames; 0: one per available core
    strict: bool = False  # an unreadable file is fatal instead of skipped
    overwrite: bool = False
    resume: bool = True  # pick up a partial ingest of the same export with the same key


@dataclass(frozen=True)
class IngestSummary:
    files: int
    read: int
    skipped: int
    frames: int
    exams: int
    exams_without_report: int
    reports_without_exam: int
    empty_reports: int = 0
    labelled_frames: int = 0
    labels_without_frame: int = 0
    resumed_exams: int = 0  # taken from a previous, interrupted run
    header_skipped: int = 0  # of `skipped`: files whose header could not be read (same in every shard)
    shard: str = ""


@dataclass(frozen=True)
class SourceFile:
    """One DICOM file of a study; `image_source` is the pseudonym its frames' ids start with."""

    path: Path = field(repr=False)
    rel_path: str = field(repr=False)  # folder names can hold patient names: never written
    header: DicomHeader = field(repr=False)
    image_source: str = ""
    handle: str = ""  # `file_handle` of rel_path: the name a skipped file is logged under


@dataclass(frozen=True)
class Study:
    """The files of one study under pseudonymous ids; raw ids stay out of `repr` and of every output."""

    exam_id: str
    patient_id: str
    files: tuple[SourceFile, ...] = field(repr=False)
    study_uid: str = field(default="", repr=False)
    report: str | None = field(default=None, repr=False)

    @property
    def n_frames(self) -> int:
        return sum(f.header.number_of_frames for f in self.files)

    @property
    def accession_number(self) -> str:
        return next((f.header.accession_number for f in self.files if f.header.accession_number), "")


@dataclass(frozen=True)
class ExportScan:
    """The first pass over an export: its studies (sorted by exam id) and the files it could not read."""

    root: Path
    studies: list[Study]
    files: int
    skipped_paths: tuple[str, ...] = field(default=(), repr=False)  # relative: for the id map only

    @property
    def skipped(self) -> int:
        return len(self.skipped_paths)


@dataclass(frozen=True)
class CleanFrame:
    """One cleaned frame of a study, in memory (`pixels`: uint8 grayscale sector crop)."""

    image_id: str
    file_index: int
    frame_number: int  # 1-based, as DICOM numbers frames
    pixels: np.ndarray
    crop_box: tuple[int, int, int, int]


@dataclass(frozen=True)
class StudyResult:
    exam_id: str
    images: list[dict]
    skipped: list[int]  # indices in `Study.files` of the files that could not be decoded


# --- pass 1: headers -------------------------------------------------------------------------
def scan_export(dicom_dir: str | Path, key: str | bytes, *, strict: bool = False, workers: int = 1,
                ) -> ExportScan:
    """Group every readable DICOM image under `dicom_dir` into studies, reading headers only."""
    root = Path(dicom_dir)
    if not root.is_dir():
        raise InputError("DICOM directory does not exist", file=root)
    key_bytes = key if isinstance(key, bytes) else check_key(key)
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    by_study: dict[str, list[SourceFile]] = {}
    skipped: list[str] = []
    chunks = [paths[i:i + HEADER_CHUNK] for i in range(0, len(paths), HEADER_CHUNK)]
    with ProgressReporter("reading headers", len(paths), "files") as progress, \
            process_map(workers if len(chunks) > 1 else 1, ordered=True) as pool_map:
        for chunk, headers in zip(chunks, pool_map(_read_headers, chunks), strict=True):
            progress.advance(len(chunk))
            for path, header in zip(chunk, headers, strict=True):
                rel = path.relative_to(root).as_posix()
                if isinstance(header, InputError):
                    if strict and not isinstance(header, NotAnImage):  # a DICOMDIR is no unreadable image
                        raise header
                    skipped.append(rel)
                    log_skipped_file(log, file_handle(rel, key_bytes), header.message, path, rel)
                    continue
                # The SOP Instance UID names the file uniquely; the relative path stands in when missing.
                source = pseudonymise(header.sop_instance_uid or f"path:{rel}", key_bytes, "img-")
                by_study.setdefault(header.study_uid, []).append(
                    SourceFile(path, rel, header, source, file_handle(rel, key_bytes)))
    studies = []
    for study_uid, files in by_study.items():
        patient_raw = next((f.header.patient_id for f in files if f.header.patient_id), "")
        studies.append(Study(exam_id=pseudonymise(study_uid, key_bytes, "exam-"),
                             patient_id=pseudonymise(patient_raw or f"study:{study_uid}", key_bytes,
                                                     "patient-"),
                             files=tuple(files), study_uid=study_uid))
    studies.sort(key=lambda s: s.exam_id)
    return ExportScan(root=root, studies=studies, files=len(paths), skipped_paths=tuple(skipped))


def _read_headers(paths: list[Path]) -> list[DicomHeader | InputError]:
    """Headers of a chunk of files (runs in a worker); an unreadable file gives its error instead."""
    out: list[DicomHeader | InputError] = []
    for path in paths:
        try:
            header = read_dicom_header(path)
            if not header.study_uid:
                raise InputError("no StudyInstanceUID: cannot group the frame into an exam", file=path)
            out.append(header)
        except InputError as err:
            out.append(err)
    return out


# --- pass 2: pixels --------------------------------------------------------------------------
def clean_file_frames(source: SourceFile, file_index: int = 0) -> list[CleanFrame]:
    """Decode and clean every frame of one file; an undecodable file raises InputError naming it."""
    image = read_dicom(source.path)
    frames = []
    for index, frame in enumerate(image.frames):
        try:
            crop, box = clean_frame(frame)
        except Exception as err:  # a degenerate frame (e.g. 1 pixel wide) must not stop the export
            raise InputError(f"cannot clean frame {index + 1} ({type(err).__name__})",
                             file=source.path) from err
        frames.append(CleanFrame(f"{source.image_source}-{index:03d}", file_index, index + 1, crop, box))
    return frames


def study_frames(study: Study, *, strict: bool = False, skipped: list[int] | None = None,
                 ) -> Iterator[CleanFrame]:
    """Cleaned frames of a study, one file decoded at a time; unreadable files are skipped and logged
    (their indices in `study.files` appended to `skipped` if given), or raise with `strict`."""
    for file_index, source in enumerate(study.files):
        try:
            frames = clean_file_frames(source, file_index)
        except InputError as err:
            if strict:
                raise
            log_skipped_file(log, source.handle, err.message, source.path, source.rel_path)
            if skipped is not None:
                skipped.append(file_index)
            continue
        yield from frames


def ingest_study(study: Study, root: str | Path, *, strict: bool = False) -> StudyResult:
    """Write the cleaned frames of one study as `root/frames/EXAM_ID/IMAGE_ID.png`; their image rows."""
    root = Path(root)
    folder = root / "frames" / study.exam_id
    skipped: list[int] = []
    rows = []
    for frame in study_frames(study, strict=strict, skipped=skipped):
        if not rows:  # here, not before: a study with no frame leaves no folder
            folder.mkdir(parents=True, exist_ok=True)
        rel = f"frames/{study.exam_id}/{frame.image_id}.png"
        Image.fromarray(frame.pixels).save(root / rel, compress_level=PNG_COMPRESSION)
        top, left, bottom, right = frame.crop_box
        rows.append({"image_id": frame.image_id, "path": rel, "file": frame.file_index,
                     "frame": frame.frame_number, "crop_top": top, "crop_left": left, "crop_bottom": bottom,
                     "crop_right": right})
    return StudyResult(study.exam_id, rows, skipped)


def _ingest_job(job: tuple[Study, Path, bool]) -> StudyResult:
    study, root, strict = job
    return ingest_study(study, root, strict=strict)


# --- the whole ingest ------------------------------------------------------------------------
def ingest_dicom(dicom_dir: str | Path, reports: str | Path | None, out: str | Path, key: str,
                 config: IngestConfig | None = None) -> IngestSummary:
    """Ingest `dicom_dir` with its `reports` into the dataset directory `out` (see the module docstring)."""
    config = config or IngestConfig()
    out = Path(out)
    _check_output(out, config.overwrite)  # before anything slow: a refusal should come at once
    key_bytes = check_key(key)
    if config.link not in LINK_FIELDS:
        raise InputError(f"unknown link field '{config.link}', expected one of {', '.join(LINK_FIELDS)}",
                         field="link")
    if not Path(dicom_dir).is_dir():
        raise InputError("DICOM directory does not exist", file=dicom_dir)
    shard = parse_shard(config.shard)
    id_map = _check_id_map_path(config.id_map, out)
    if reports is None and not config.allow_missing_report:
        raise InputError("no reports table given (use --allow-missing-report to ingest without)",
                         field="reports")
    report_of, empty_reports = ({}, 0) if reports is None else _read_reports(
        Path(reports), config.report_key_column or config.link, config.report_column, config.encoding)
    labels = read_frame_labels(config.labels, encoding=config.encoding) if config.labels else FrameLabels()

    workers = config.workers or len(os.sched_getaffinity(0))
    scan = scan_export(dicom_dir, key_bytes, strict=config.strict, workers=workers)
    kept, without_report, linked = _link_reports(scan.studies, report_of, config)
    if not kept:
        raise InputError(f"no exam could be linked to a report ({len(scan.studies)} studies, {scan.skipped} "
                         f"files skipped); check --link and --report-key-column", file=reports)
    labels_without_frame = len(labels) - labels.matched_rows(
        [(_label_keys(labels, f), f.header.number_of_frames) for s in kept for f in s.files])
    mine = [s for s in kept if shard is None or shard.holds(s.exam_id)]
    without_report = sum(shard is None or shard.holds(e) for e in without_report)

    staging = _staging_dir(out)
    with parents_made(staging), _locked_staging(staging, _fingerprint(dicom_dir, key_bytes), config.resume):
        done = _read_journal(staging / "journal.jsonl")
        todo = [s for s in mine if s.exam_id not in done]
        if done:
            log.info("resuming: %d of %d exams already ingested", len(mine) - len(todo), len(mine))
        try:
            _run_studies(todo, staging, config, workers, done)
        except InputError:
            shutil.rmtree(staging, ignore_errors=True)  # a refused export leaves nothing behind
            raise
        exam_rows, image_rows, labelled, decode_skipped = _tables(mine, done, labels)
        summary = IngestSummary(
            files=scan.files, read=scan.files - scan.skipped - decode_skipped,
            skipped=scan.skipped + decode_skipped, frames=len(image_rows), exams=len(exam_rows),
            exams_without_report=without_report, reports_without_exam=len(set(report_of) - linked),
            empty_reports=empty_reports, labelled_frames=labelled, labels_without_frame=labels_without_frame,
            resumed_exams=len(mine) - len(todo), header_skipped=scan.skipped, shard=str(shard or ""))
        dataset = staging / "dataset"
        _drop_other_exams(dataset, {s.exam_id for s in mine})
        write_table(pd.DataFrame(exam_rows, columns=EXAM_COLUMNS), dataset / "exams.csv")
        write_table(pd.DataFrame(image_rows, columns=IMAGE_COLUMNS), dataset / "images.csv")
        write_summary(dataset, summary, key_bytes)
        if id_map is not None:
            write_id_map(mine, id_map, key_bytes, _skipped_paths(scan, mine, done, shard, key_bytes))
        _commit(dataset, out, config.overwrite)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("ingest: %s", summary)
    return summary


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a directory", file=out)
    if out.exists() and not overwrite and any(out.iterdir()):
        raise InputError("output directory exists and is not empty (use --overwrite)", file=out)


def _check_id_map_path(path: str | Path | None, out: Path) -> Path | None:
    """The id map links pseudonyms back to people: it must never land inside the dataset."""
    if path is None:
        return None
    path = Path(path)
    for forbidden in (out, _staging_dir(out)):
        if path.resolve().is_relative_to(forbidden.resolve()):
            raise InputError("the id map must be written outside the dataset directory", file=path,
                             field="id_map")
    return path


def _read_reports(path: Path, key_column: str, report_column: str, encoding: str | None,
                  ) -> tuple[dict[str, str], int]:
    """Reports keyed by the link value, and how many rows have an empty report."""
    table = read_user_table(path, encoding=encoding)
    require_columns(table, (key_column, report_column), path)
    keys = table[key_column].astype(str).str.strip()
    duplicated = keys.duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0]) + 1
        raise InputError("duplicate report key", file=path, row=row, field=key_column)
    texts = table[report_column].fillna("").astype(str)
    return dict(zip(keys, texts, strict=True)), int((texts.str.strip() == "").sum())


def _link_reports(studies: list[Study], report_of: dict[str, str], config: IngestConfig,
                  ) -> tuple[list[Study], list[str], set[str]]:
    """Studies kept (with their report), exam ids without a report, and the report keys that matched."""
    kept, without, linked = [], [], set()
    for study in studies:
        link_value = study.study_uid if config.link == "StudyInstanceUID" else study.accession_number
        if link_value in report_of:
            linked.add(link_value)  # an empty report still belongs to this exam
        report = report_of.get(link_value, "")
        if not report.strip():
            without.append(study.exam_id)
            log.info("exam %s has no report: %s", study.exam_id,
                     "kept" if config.allow_missing_report else "skipped")
            if not config.allow_missing_report:
                continue
        kept.append(Study(study.exam_id, study.patient_id, study.files, study.study_uid, report))
    return kept, without, linked


def _label_keys(labels: FrameLabels, source: SourceFile) -> list[tuple]:
    h = source.header
    return labels.file_keys(h.sop_instance_uid, h.accession_number, h.instance_number)


def _run_studies(todo: list[Study], staging: Path, config: IngestConfig, workers: int,
                 done: dict[str, dict]) -> None:
    """Ingest `todo`, largest studies first (better balance), committing each to the journal."""
    todo = sorted(todo, key=lambda s: -s.n_frames)
    jobs = [(s, staging / "dataset", config.strict) for s in todo]
    with open(staging / "journal.jsonl", "a", encoding="utf-8") as journal, \
            ProgressReporter("ingest", sum(s.n_frames for s in todo), "frames") as progress, \
            process_map(min(workers, len(todo))) as pool_map:
        _commit_results(pool_map(_ingest_job, jobs), journal, progress, done)


def _commit_results(results: Iterator[StudyResult], journal, progress: ProgressReporter,
                    done: dict[str, dict]) -> None:
    for result in results:
        record = {"exam_id": result.exam_id, "images": result.images, "skipped": result.skipped}
        journal.write(json.dumps(record) + "\n")
        journal.flush()
        os.fsync(journal.fileno())
        done[result.exam_id] = record
        progress.advance(len(result.images) + len(result.skipped))


def _tables(studies: list[Study], done: dict[str, dict], labels: FrameLabels,
            ) -> tuple[list[dict], list[dict], int, int]:
    """Exam and image rows in exam-id order; frames labelled; files skipped while decoding."""
    exam_rows, image_rows, labelled, skipped = [], [], 0, 0
    for study in studies:
        record = done[study.exam_id]
        skipped += len(record["skipped"])
        exam_rows.append({"exam_id": study.exam_id, "patient_id": study.patient_id, "report": study.report})
        for image in record["images"]:
            values = labels.lookup(_label_keys(labels, study.files[image["file"]]), image["frame"])
            labelled += bool(values)
            image_rows.append({"image_id": image["image_id"], "exam_id": study.exam_id, "path": image["path"],
                               "organ": values.get("organ", ""), "label": values.get("label", ""),
                               "side": values.get("side", ""),
                               "laterality": study.files[image["file"]].header.laterality,
                               **{c: image[c] for c in IMAGE_COLUMNS[-4:]}})
    return exam_rows, image_rows, labelled, skipped


def write_summary(dataset: Path, summary: IngestSummary, key: bytes) -> None:
    """`ingest.json`: the counts, and a check value of the key (an HMAC: it reveals nothing of it)."""
    payload = {"summary": asdict(summary), "key_check": pseudonymise("usconvirt-key-check", key, "")}
    with atomic_path(dataset / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _skipped_paths(scan: ExportScan, studies: list[Study], done: dict[str, dict], shard: Shard | None,
                   key: bytes) -> list[str]:
    """The relative paths of the files this run skipped; a shard lists only the unreadable headers whose
    handle falls in it, so the shards' id maps stay disjoint."""
    unread = [p for p in scan.skipped_paths if shard is None or shard.holds(file_handle(p, key))]
    return unread + [s.files[i].rel_path for s in studies for i in done[s.exam_id]["skipped"]]


def write_id_map(studies: list[Study], path: Path, key: bytes, skipped: list[str]) -> None:
    """pseudonym, kind, source_field, source_value: for the team to go back to the PACS, and to find the
    `skipped` files the log names by handle only; mode 0600."""
    rows = [(file_handle(rel, key), "file", "path", rel) for rel in skipped]
    for study in studies:
        rows.append((study.exam_id, "exam", "StudyInstanceUID", study.study_uid))
        if study.accession_number:
            rows.append((study.exam_id, "exam", "AccessionNumber", study.accession_number))
        patient_raw = next((f.header.patient_id for f in study.files if f.header.patient_id), "")
        if patient_raw:
            rows.append((study.patient_id, "patient", "PatientID", patient_raw))
        for source in study.files:
            uid = source.header.sop_instance_uid
            rows.append((source.image_source, "image", "SOPInstanceUID" if uid else "path",
                         uid or source.rel_path))
    table = pd.DataFrame(sorted(set(rows)), columns=["pseudonym", "kind", "source_field", "source_value"])
    with atomic_path(path) as tmp:
        tmp.chmod(0o600)
        table.to_csv(tmp, index=False)
    log.info("wrote the id map (%d rows) to %s", len(table), path)


# --- resumable staging -----------------------------------------------------------------------
def _staging_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def _fingerprint(dicom_dir: str | Path, key: bytes) -> dict:
    """What a journal's frames depend on: the export, the key, the journal format."""
    return {"version": JOURNAL_VERSION, "dicom_dir": str(Path(dicom_dir).resolve()),
            "key_check": pseudonymise("usconvirt-key-check", key, "")}


@contextlib.contextmanager
def _locked_staging(staging: Path, fingerprint: dict, resume: bool) -> Iterator[None]:
    """The staging directory, locked for this process; a partial run of other settings is discarded."""
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / "lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise InputError("another ingest is writing this output right now", file=staging) from err
        state_file = staging / "state.json"
        previous = json.loads(state_file.read_text()) if state_file.exists() else None
        if previous is not None and (previous != fingerprint or not resume):
            log.info("discarding a partial ingest made with other settings or --no-resume")
            for child in staging.iterdir():
                if child.name != "lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        state_file.write_text(json.dumps(fingerprint))
        yield


def _read_journal(path: Path) -> dict[str, dict]:
    """Committed studies; a last line cut by a kill is ignored (its study is redone)."""
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        done[record["exam_id"]] = record
    return done


def _drop_other_exams(dataset: Path, exam_ids: set[str]) -> None:
    """Frames of exams a resumed run no longer ingests (reports or shard changed) do not belong here."""
    frames = dataset / "frames"
    for folder in frames.iterdir() if frames.is_dir() else ():
        if folder.name not in exam_ids:
            shutil.rmtree(folder)


def _commit(dataset: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished dataset into place (replacing `out` only with overwrite)."""
    if out.exists():
        _check_output(out, overwrite)
        shutil.rmtree(out)
    os.replace(dataset, out)
