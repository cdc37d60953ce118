"""De-identification: keyed pseudonyms for ids, and the header fields that are never written anywhere.

A keyed hash (HMAC-SHA256) rather than a plain hash: without the key, nobody can rebuild the mapping by
hashing a list of known patient ids. The same key gives the same pseudonyms, so re-ingesting an export
keeps ids stable.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

from usconvirt.errors import InputError

# DICOM attributes that identify a person, a place or a visit. Ingest reads only the ids it pseudonymises
# (StudyInstanceUID, AccessionNumber, PatientID, SOPInstanceUID) and writes none of these, raw or in logs.
NEVER_WRITTEN = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate",
    "PatientBirthName", "PatientMotherBirthName", "PatientAddress", "PatientTelephoneNumbers",
    "MedicalRecordLocator", "IssuerOfPatientID", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "StationName", "DeviceSerialNumber", "AccessionNumber", "StudyID", "StudyInstanceUID",
    "SeriesInstanceUID", "SOPInstanceUID", "StudyDate", "StudyTime", "SeriesDate", "AcquisitionDateTime",
    "ContentDate",
)

DIGEST_CHARS = 16  # 64 bits: collisions are negligible for millions of ids


def check_key(key: str) -> bytes:
    """The key as bytes; an empty or short key would make pseudonyms guessable."""
    if len(key) < 8:
        raise InputError("the pseudonymisation key must hold at least 8 characters", field="key")
    return key.encode("utf-8")


def pseudonymise(raw_id: str, key: str | bytes, prefix: str) -> str:
    """`prefix` + the first DIGEST_CHARS hex digits of HMAC-SHA256(key, raw_id)."""
    key_bytes = key if isinstance(key, bytes) else check_key(key)
    digest = hmac.new(key_bytes, raw_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{prefix}{digest[:DIGEST_CHARS]}"


def file_handle(rel_path: str, key: str | bytes) -> str:
    """`file-` + the keyed pseudonym of a file's path relative to its export: how a skipped file is named."""
    return pseudonymise(rel_path, key, "file-")


def log_skipped_file(logger: logging.Logger, handle: str, reason: str, path: str | Path,
                     *also: str | Path) -> None:
    """A WARNING naming a skipped file by `handle` only; its `path` (and the full reason) at DEBUG.

    Folder and file names of a PACS export are often patient names or ids, and batch schedulers keep
    logs: the path, and any text of the reason that repeats it or `also` (e.g. the relative path), stay
    at DEBUG. The team finds the file with `usconvirt --verbose` or in the `--id-map` file, or by
    computing `file_handle` of a candidate path with the key.
    """
    redacted = reason
    for name in sorted({str(path), *map(str, also)}, key=len, reverse=True):
        redacted = redacted.replace(name, handle)
    logger.warning("skipped file %s: %s (its path: `usconvirt --verbose`, or the --id-map file)", handle,
                   redacted)
    logger.debug("skipped file %s is %s: %s", handle, path, reason)
