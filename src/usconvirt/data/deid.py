"""De-identification: keyed pseudonyms for ids, and the header fields that are never written anywhere.

A keyed hash (HMAC-SHA256) rather than a plain hash: without the key, nobody can rebuild the mapping by
hashing a list of known patient ids. The same key gives the same pseudonyms, so re-ingesting an export
keeps ids stable.
"""

from __future__ import annotations

import hashlib
import hmac

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
