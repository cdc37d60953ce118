"""Annotations a team keeps in its own tables, attached to frames during ingest.

A row names a DICOM file by `SOPInstanceUID`, or by `AccessionNumber` + `InstanceNumber` (what a PACS
viewer shows), optionally one frame of a multi-frame file (`frame`, 1-based as in DICOM), and gives any of
`organ`, `label`, `side` (the values of docs/data-format.md). Without `frame` it applies to every frame of
the file. The raw ids stay in memory: only the pseudonymous image ids reach the dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from usconvirt.data.schema import LABELS, ORGANS, SIDES
from usconvirt.data.user_tables import read_user_table
from usconvirt.errors import InputError
from usconvirt.io import columns_found

VALUE_COLUMNS = {"organ": ORGANS, "label": LABELS, "side": SIDES}
SOP_KEY, ACCESSION_KEY, INSTANCE_KEY = "SOPInstanceUID", "AccessionNumber", "InstanceNumber"
FRAME_KEY = "frame"

log = logging.getLogger(__name__)


@dataclass
class FrameLabels:
    """Annotations by file key and frame number (0: every frame of the file)."""

    by_key: dict[tuple, dict[str, str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.by_key)

    def file_keys(self, sop_instance_uid: str, accession_number: str, instance_number: str) -> list[tuple]:
        """The keys a file can be annotated under (frame number 0 stands for 'every frame')."""
        keys = [("sop", sop_instance_uid.strip())] if sop_instance_uid.strip() else []
        if accession_number.strip() and instance_number.strip():
            keys.append(("acc", accession_number.strip(), _instance(instance_number)))
        return keys

    def lookup(self, file_keys: list[tuple], frame_number: int) -> dict[str, str]:
        """Values for frame `frame_number` (1-based): the file's row, overridden by the frame's own row."""
        values: dict[str, str] = {}
        for key in file_keys:
            values |= self.by_key.get((*key, 0), {})
        for key in file_keys:
            values |= self.by_key.get((*key, frame_number), {})
        return values

    def matched_rows(self, file_frames: list[tuple[list[tuple], int]]) -> int:
        """How many rows name one of the given (file keys, number of frames)."""
        wanted = set()
        for keys, n_frames in file_frames:
            for key in keys:
                wanted.add((*key, 0))
                wanted.update((*key, i) for i in range(1, n_frames + 1))
        return len(wanted & self.by_key.keys())


def read_frame_labels(path: str | Path, *, encoding: str | None = None) -> FrameLabels:
    """Parse and check an annotation table; a bad key or value names its row and field."""
    path = Path(path)
    table = read_user_table(path, encoding=encoding)
    by_sop = SOP_KEY in table.columns
    if not by_sop and not {ACCESSION_KEY, INSTANCE_KEY} <= set(table.columns):
        raise InputError(f"expected a {SOP_KEY} column, or {ACCESSION_KEY} and {INSTANCE_KEY}; "
                         f"{columns_found(table)}", file=path, field=SOP_KEY)
    values = [c for c in VALUE_COLUMNS if c in table.columns]
    if not values:
        raise InputError(f"no annotation column: expected some of {', '.join(VALUE_COLUMNS)}", file=path)
    ignored = [c for c in table.columns if c not in {*VALUE_COLUMNS, SOP_KEY, ACCESSION_KEY, INSTANCE_KEY,
                                                     FRAME_KEY}]
    if ignored:  # a misspelt or translated column ('etiquette', 'cote') would otherwise vanish unseen
        log.warning("%s: column(s) %s ignored; the annotation columns are %s", path.name, ", ".join(ignored),
                    ", ".join(VALUE_COLUMNS))
    labels = FrameLabels()
    for row, record in enumerate(table.to_dict("records"), start=1):
        key = _row_key(record, by_sop, path, row)
        if key in labels.by_key:
            raise InputError("duplicate annotation for this file and frame", file=path, row=row,
                             field=SOP_KEY if by_sop else INSTANCE_KEY)
        labels.by_key[key] = _row_values(record, values, path, row)
    return labels


def _row_key(record: dict, by_sop: bool, path: Path, row: int) -> tuple:
    frame_text = str(record.get(FRAME_KEY, "") or "").strip()
    if frame_text and not (frame_text.isdigit() and int(frame_text) >= 1):
        raise InputError(f"frame must be a number from 1, got '{frame_text}'", file=path, row=row,
                         field=FRAME_KEY)
    frame = int(frame_text) if frame_text else 0
    if by_sop and str(record[SOP_KEY]).strip():
        return ("sop", str(record[SOP_KEY]).strip(), frame)
    accession = str(record.get(ACCESSION_KEY, "") or "").strip()
    instance = str(record.get(INSTANCE_KEY, "") or "").strip()
    if not accession or not instance:
        raise InputError("empty file key", file=path, row=row, field=SOP_KEY if by_sop else ACCESSION_KEY)
    return ("acc", accession, _instance(instance), frame)


def _row_values(record: dict, columns: list[str], path: Path, row: int) -> dict[str, str]:
    out = {}
    for column in columns:
        value = str(record[column] if not pd.isna(record[column]) else "").strip().lower()
        if value and value not in VALUE_COLUMNS[column]:
            raise InputError(f"unknown value '{value}', expected one of {', '.join(VALUE_COLUMNS[column])}",
                             file=path, row=row, field=column)
        if value:
            out[column] = value
    return out


def _instance(text: str) -> str:
    """InstanceNumber as written by any tool ('7', '007', '7.0') -> '7'."""
    text = text.strip()
    try:
        return str(int(float(text)))
    except ValueError:
        return text
