"""Reading ultrasound DICOM files: every frame as uint8, whatever the photometric interpretation.

`read_dicom_header` reads the linking fields without the pixels (ingest's first pass), and the side the
file records (ImageLaterality, else Laterality: `L`, `R`, `B`), which `pair --match-laterality` can use.
Handles single- and multi-frame files; MONOCHROME1/2, RGB, YBR_FULL(_422) and PALETTE COLOR; native,
JPEG baseline and JPEG 2000 pixel data as far as the installed pydicom handlers (Pillow, pylibjpeg) allow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut

from usconvirt.errors import InputError


@dataclass(frozen=True)
class DicomImage:
    """The frames of one DICOM file and the header fields ingest needs (raw: pseudonymise before writing)."""

    frames: list[np.ndarray]
    study_uid: str
    accession_number: str
    patient_id: str
    sop_instance_uid: str
    laterality: str = ""  # left, right, both or "" (see `recorded_laterality`)


@dataclass(frozen=True)
class DicomHeader:
    """What ingest's first pass needs of a file, read without its pixels (raw ids: pseudonymise them)."""

    study_uid: str
    accession_number: str
    patient_id: str
    sop_instance_uid: str
    instance_number: str
    number_of_frames: int
    laterality: str = ""


HEADER_TAGS = ("StudyInstanceUID", "AccessionNumber", "PatientID", "SOPInstanceUID", "InstanceNumber",
               "NumberOfFrames", "Rows", "SOPClassUID", "ImageLaterality", "Laterality")
LATERALITY_CODES = {"L": "left", "R": "right", "B": "both"}  # DICOM's code strings; U (unpaired) is unknown
MEDIA_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"  # DICOMDIR: an index of the export, no pixels
DICOM_SUFFIXES = (".dcm", ".dicom", "")


class NotAnImage(InputError):
    """A file that holds no image by design (a DICOMDIR, a structured report, a file that is not DICOM):
    skipped and counted, even where an unreadable image is fatal (`--strict`)."""


def has_dicom_magic(path: Path) -> bool:
    """"DICM" after the 128-byte preamble (PS3.10 7.1)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def names_its_class(ds: pydicom.Dataset) -> bool:
    """Whether a dataset says what it is: a transfer syntax and a SOP class (or a DICOMDIR's media class).
    Every real object has them; random bytes after the DICM magic, read as unknown elements, have neither."""
    meta = ds.get("file_meta")
    return bool(getattr(meta, "TransferSyntaxUID", "")) and bool(
        ds.get("SOPClassUID") or getattr(meta, "MediaStorageSOPClassUID", ""))


def is_dicom_candidate(path: Path) -> bool:
    """A DICOM suffix (or none, as scanners write them) or the DICM magic: a file meant to be DICOM."""
    return path.suffix.lower() in DICOM_SUFFIXES or has_dicom_magic(path)


def recorded_laterality(ds: pydicom.Dataset) -> str:
    """The side a file records: Image Laterality (0020,0062), else the series' Laterality (0020,0060)."""
    for tag in ("ImageLaterality", "Laterality"):
        side = LATERALITY_CODES.get(str(ds.get(tag, "") or "").strip().upper(), "")
        if side:
            return side
    return ""


@contextlib.contextmanager
def values_unvalidated() -> Iterator[None]:
    """pydicom's reading without its value checks, while our code reads a file.

    pydicom logs and warns about a malformed value *with the value* ("Invalid value for VR UI:
    '1.2.DUPONT'"), at WARNING: raw UIDs and ids would reach the logs a batch scheduler keeps. The
    values are read the same; only the messages go.
    """
    settings = pydicom.config.settings
    before = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        yield
    finally:
        settings.reading_validation_mode = before


def read_dicom_header(path: str | Path) -> DicomHeader:
    """Linking fields of one file, pixels not read; a non-image file (DICOMDIR, report) raises InputError."""
    with values_unvalidated():
        return _read_header(Path(path))


def _read_header(path: Path) -> DicomHeader:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except Exception as err:  # pydicom raises many types for a corrupt file; all mean "unreadable"
        error = InputError if is_dicom_candidate(path) else NotAnImage
        raise error(f"not a readable DICOM file ({type(err).__name__})", file=path) from err
    media_class = str(getattr(ds.get("file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if media_class == MEDIA_DIRECTORY_STORAGE:
        raise NotAnImage("DICOMDIR (an index of the export, no image)", file=path)
    if "Rows" not in ds:
        if not names_its_class(ds):
            raise InputError("DICOM magic, but the dataset cannot be parsed", file=path)
        raise NotAnImage("DICOM file holds no image", file=path)
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n_frames = 1
    return DicomHeader(
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        instance_number=str(ds.get("InstanceNumber", "") or ""),
        number_of_frames=max(1, n_frames),
        laterality=recorded_laterality(ds),
    )


def read_dicom_frames(path: str | Path) -> list[np.ndarray]:
    """Every frame of a DICOM file as uint8 (H, W) or (H, W, 3)."""
    return read_dicom(path).frames


def read_dicom(path: str | Path) -> DicomImage:
    """Frames and linking fields of one DICOM file; a corrupt or pixel-less file raises InputError."""
    with values_unvalidated():
        return _read_image(Path(path))


def _read_image(path: Path) -> DicomImage:
    try:
        ds = pydicom.dcmread(path)
    except Exception as err:  # pydicom raises many types for a corrupt file; all mean "unreadable"
        raise InputError(f"not a readable DICOM file ({type(err).__name__})", file=path) from err
    if "PixelData" not in ds:
        raise InputError("DICOM file holds no pixel data", file=path)
    try:
        pixels = ds.pixel_array  # YBR_* is converted to RGB here
        frames = _to_uint8_frames(pixels, ds)
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"cannot decode DICOM pixel data ({type(err).__name__}: {err})", file=path) from err
    return DicomImage(
        frames=frames,
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "") or ""),
        laterality=recorded_laterality(ds),
    )


def _to_uint8_frames(pixels: np.ndarray, ds: pydicom.Dataset) -> list[np.ndarray]:
    """Split into frames and map every photometric interpretation to uint8 grayscale or RGB."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(ds.get("SamplesPerPixel", 1))
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if n_frames == 1:
        pixels = pixels[np.newaxis]
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
        if pixels.dtype == np.uint16:  # 16-bit LUT entries: keep absolute levels, not a per-frame stretch
            pixels = (pixels >> 8).astype(np.uint8)
    elif samples == 1 and pixels.ndim != 3 or samples == 3 and pixels.ndim != 4:
        raise InputError(f"unexpected pixel array shape {pixels.shape} for {n_frames} frame(s)")
    frames = []
    for frame in pixels:
        frame = _scale_to_uint8(frame)
        if photometric == "MONOCHROME1":  # 0 is white in MONOCHROME1
            frame = 255 - frame
        frames.append(np.ascontiguousarray(frame))
    return frames


def _scale_to_uint8(frame: np.ndarray) -> np.ndarray:
    """uint8 as is; wider types (16-bit LUTs, >8-bit gray) stretched from their min-max range to 0-255."""
    if frame.dtype == np.uint8:
        return frame
    frame = frame.astype(np.float32)
    lo, hi = float(frame.min()), float(frame.max())
    return ((frame - lo) * (255.0 / max(hi - lo, 1e-6))).round().astype(np.uint8)
