"""What `usconvirt predict` reads: DICOM trees, dataset directories and PNG/JPG files, one job a file.

A directory with an images table of PNG/JPG frames is a dataset: its ids are pseudonyms already, and its
side and organ columns are the user's. Any other tree is an export and may hold anything: files with an
image suffix are frames (their folder is their exam), files with a DICOM suffix, no suffix or the DICM
magic are DICOM, everything else (tables, reports, DICOM files without pixels) is ignored. A DICOM file
that cannot be read is corrupt: skipped and named, or fatal with --strict. So is a file with the DICM
magic whose dataset names no SOP class: pydicom reads random bytes after the magic as a few unknown
elements and no pixels, which would otherwise pass for a report without an image. Decoding and preprocessing
run in worker processes (`decode`); ids are pseudonymised in the parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from usconvirt.bundle.preprocessing import prepare
from usconvirt.data.dicom import (
    has_dicom_magic,
    is_dicom_candidate,
    names_its_class,
    read_dicom,
    values_unvalidated,
)
from usconvirt.data.images import read_frame
from usconvirt.errors import InputError
from usconvirt.io import find_table, read_table, require_columns

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
NO_PIXELS = "holds no pixel data"  # read_dicom's message for a DICOM without an image


@dataclass(frozen=True)
class Job:
    """One file to read: a DICOM file, an image file, or a frame of a dataset directory (ids given)."""

    kind: str  # dicom | image | dataset
    path: Path
    rel: str  # path relative to its input, the name used in messages
    image_id: str = ""
    exam_id: str = ""
    side: str = ""
    organ: str = ""


@dataclass
class Decoded:
    """A job's frames, preprocessed at every size the bundle needs; raw header ids stay in memory only."""

    job: Job
    pixels: dict[int, np.ndarray] = field(default_factory=dict)  # size -> (n, size, size) uint8
    sides: list[str] = field(default_factory=list)
    study_uid: str = ""
    accession_number: str = ""
    sop_instance_uid: str = ""
    error: str | None = None  # why the file cannot be read, without its path (`rel` names it)
    no_image: bool = False

    @property
    def n_frames(self) -> int:
        return len(self.sides)


def file_names_its_class(path: Path) -> bool:
    """`names_its_class` of a file's header; False when pydicom cannot parse it."""
    try:
        with values_unvalidated():  # a malformed UID would otherwise be logged with its value
            return names_its_class(pydicom.dcmread(path, stop_before_pixels=True))
    except Exception:  # pydicom raises many types for a corrupt file; all mean "cannot be parsed"
        return False


def discover(inputs: list[Path]) -> tuple[list[Job], int]:
    """Jobs for every input (files, DICOM/PNG trees, dataset directories), and the count of ignored files."""
    jobs: list[Job] = []
    ignored = 0
    for source in inputs:
        source = Path(source)
        if source.is_file():
            if source.suffix.lower() in IMAGE_SUFFIXES:
                jobs.append(Job("image", source, f"{source.resolve().parent.name}/{source.name}"))
            else:
                jobs.append(Job("dicom", source, source.name))
        elif source.is_dir() and _has_table(source, "images") and (frames := dataset_jobs(source)) and all(
                job.path.suffix.lower() in IMAGE_SUFFIXES for job in frames):
            jobs.extend(frames)  # a dataset of DICOM frames is read as an export: ids from the headers
        elif source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                rel = path.relative_to(source).as_posix()
                if any(part.startswith(".") for part in path.relative_to(source).parts):
                    ignored += 1  # caches and editor files
                elif path.suffix.lower() in IMAGE_SUFFIXES:
                    # from the input folder's name: `predict B exam1/ exam2/` gives two exams
                    jobs.append(Job("image", path, f"{source.resolve().name}/{rel}"))
                elif is_dicom_candidate(path):
                    jobs.append(Job("dicom", path, rel))
                else:
                    ignored += 1
        else:
            raise InputError("input does not exist", file=source)
    return jobs, ignored


def _has_table(directory: Path, stem: str) -> bool:
    return any((directory / f"{stem}{s}").is_file() for s in (".csv", ".jsonl", ".parquet"))


def dataset_jobs(root: Path) -> list[Job]:
    """One job per row of a dataset's images table; its ids are already pseudonyms, kept as they are."""
    table_path = find_table(root, "images")
    images = read_table(table_path)
    require_columns(images, ("image_id", "exam_id", "path"), table_path)
    images = images.fillna("").astype(str)
    resolved = root.resolve()
    jobs = []
    for row, item in enumerate(images.itertuples(index=False), start=1):
        path = (root / item.path).resolve()
        if not path.is_relative_to(resolved):
            raise InputError(f"path '{item.path}' leads outside the dataset directory", file=table_path,
                             row=row, field="path")
        jobs.append(Job("dataset", root / item.path, item.path, image_id=item.image_id, exam_id=item.exam_id,
                        side=getattr(item, "side", "") or "", organ=getattr(item, "organ", "") or ""))
    return jobs


def decode(job: Job, sizes: tuple[int, ...]) -> Decoded:
    """Read and preprocess one job; an unreadable file becomes `error` (the reason, without the path)."""
    try:
        if job.kind == "dicom":
            return _decode_dicom(job, sizes)
        frames = [read_frame(job.path)]
        return _stack(Decoded(job, sides=[job.side]), frames, sizes, dicom=False)
    except InputError as err:
        if job.kind == "dicom" and NO_PIXELS in str(err):
            if has_dicom_magic(job.path) and not file_names_its_class(job.path):
                return Decoded(job, error="DICOM magic, but the dataset cannot be parsed")
            return Decoded(job, no_image=True)
        return Decoded(job, error=err.message)
    except Exception as err:  # a frame the preprocessing cannot take is as unusable as a corrupt file
        return Decoded(job, error=f"cannot preprocess ({type(err).__name__}: {err})")


def _decode_dicom(job: Job, sizes: tuple[int, ...]) -> Decoded:
    image = read_dicom(job.path)
    decoded = Decoded(job, sides=[image.laterality] * len(image.frames), study_uid=image.study_uid,
                      accession_number=image.accession_number, sop_instance_uid=image.sop_instance_uid)
    return _stack(decoded, image.frames, sizes, dicom=True)


def _stack(decoded: Decoded, frames: list[np.ndarray], sizes: tuple[int, ...], *, dicom: bool) -> Decoded:
    prepared = [prepare(frame, sizes, dicom=dicom) for frame in frames]
    decoded.pixels = {s: np.stack([p[s] for p in prepared]) for s in sizes}
    return decoded
