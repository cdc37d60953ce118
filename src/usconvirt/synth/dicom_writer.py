"""Write a frame as an Ultrasound Image Storage DICOM file with fake PHI, to exercise ingest and de-id.

The PHI is invented (names, birth date, institution) but sits where real PHI would: ingest must drop it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from usconvirt.synth.exam import ExamState

US_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.6.1"
UID_ROOT = "1.2.826.0.1.3680043.10.999."  # a private-looking root; these UIDs identify nothing real
FIRST_NAMES = ("JEAN", "MARIE", "PIERRE", "SOPHIE", "LUC", "CLAIRE", "PAUL", "ANNE", "MARC", "JULIE")
LAST_NAMES = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "PETIT", "DURAND", "LEROY", "MOREAU")


def _uid(*parts: object) -> str:
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"{UID_ROOT}{digest}"[:64]


def study_uid(exam: ExamState, seed: int) -> str:
    """The StudyInstanceUID of an exam (stable for a seed)."""
    return _uid("study", seed, exam.exam_id)


def _fake_name(exam: ExamState) -> str:
    h = int(hashlib.sha256(exam.patient_id.encode()).hexdigest(), 16)
    first, last = FIRST_NAMES[h % len(FIRST_NAMES)], LAST_NAMES[(h // 7) % len(LAST_NAMES)]
    return f"{last}^{first}"


def write_dicom_frame(path: Path, image: np.ndarray, exam: ExamState, frame_no: int, seed: int) -> None:
    """Write one uint8 grayscale frame with a plausible ultrasound header and fake patient data."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = _uid("sop", seed, exam.exam_id, frame_no)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = US_IMAGE_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid(exam, seed)
    ds.SeriesInstanceUID = _uid("series", seed, exam.exam_id)
    ds.Modality = "US"
    ds.PatientName = _fake_name(exam)
    ds.PatientID = f"IPP{int(hashlib.sha256(exam.patient_id.encode()).hexdigest()[:8], 16) % 10**8:08d}"
    ds.PatientBirthDate = f"{int(exam.exam_date[:4]) - exam.age}0101"
    ds.PatientSex = "O"
    ds.AccessionNumber = f"ACC{int(hashlib.sha256(exam.exam_id.encode()).hexdigest()[:8], 16) % 10**9:09d}"
    ds.StudyDate = ds.ContentDate = exam.exam_date.replace("-", "")
    ds.StudyTime = ds.ContentTime = f"{9 + frame_no // 6:02d}{(frame_no * 7) % 60:02d}00"
    ds.InstitutionName = "HOPITAL SYNTHETIQUE"
    ds.ReferringPhysicianName = "DOCTEUR^FICTIF"
    ds.Manufacturer = "usconvirt-synth"
    ds.InstanceNumber = frame_no + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = image.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
