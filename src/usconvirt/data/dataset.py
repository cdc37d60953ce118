"""The dataset format every stage shares: `exams` and `images` tables in a directory.

See docs/data-format.md. Rows are numbered from 1, the header excluded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from usconvirt.data.schema import EXAM_COLUMNS, IMAGE_COLUMNS, LABELS, ORGANS, SIDES
from usconvirt.errors import InputError
from usconvirt.io import find_table, read_table, require_columns, require_ids


@dataclass(frozen=True)
class Dataset:
    """Validated exams and images; `images.path` is relative to `root`."""

    root: Path
    exams: pd.DataFrame
    images: pd.DataFrame

    def image_path(self, path: str) -> Path:
        return self.root / path


def images_file(dataset: Dataset) -> Path:
    """The images table an error should name (a dataset built in memory has none on disk)."""
    try:
        return find_table(dataset.root, "images")
    except InputError:
        return dataset.root / "images.csv"


def load_dataset(path: str | Path, *, check_files: bool = True,
                 allow_missing_reports: bool = False) -> Dataset:
    """Load and validate a dataset directory; any problem raises one InputError naming file, row, field.

    `allow_missing_reports` accepts exams with an empty report (ingest --allow-missing-report, for
    prediction); training stages keep the default, since a pair needs its report.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputError("dataset directory does not exist", file=root)
    exams_file = find_table(root, "exams")
    images_file = find_table(root, "images")
    exams = _normalise(read_table(exams_file))
    images = _normalise(read_table(images_file))

    require_columns(exams, EXAM_COLUMNS, exams_file)
    require_columns(images, IMAGE_COLUMNS, images_file)
    require_ids(exams, "exam_id", exams_file)
    require_ids(images, "image_id", images_file)
    _require_nonempty(exams, ("patient_id",), exams_file)
    _require_nonempty(images, ("exam_id", "path"), images_file)
    _check_reports(exams, exams_file, allow_empty=allow_missing_reports)

    known = set(exams["exam_id"])
    for row, exam_id in _rows(images["exam_id"]):
        if exam_id not in known:
            raise InputError(f"unknown exam '{exam_id}' (not in {exams_file.name})",
                             file=images_file, row=row, field="exam_id")
    for column, allowed in (("organ", ORGANS), ("label", LABELS), ("side", SIDES)):
        if column in images:
            for row, value in _rows(images[column]):
                if value and value not in allowed:
                    raise InputError(f"unknown value '{value}', expected one of {', '.join(allowed)}",
                                     file=images_file, row=row, field=column)
        else:
            images[column] = ""
    if check_files:
        _check_paths(images, root, images_file)
    return Dataset(root=root, exams=exams.reset_index(drop=True), images=images.reset_index(drop=True))


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    for column in df.columns:
        df[column] = df[column].where(df[column].notna(), "").astype(str)
        if column != "report":
            df[column] = df[column].str.strip()
    return df


def _rows(series: pd.Series):
    return ((i + 1, v) for i, v in enumerate(series.tolist()))


def _require_nonempty(df: pd.DataFrame, columns: tuple[str, ...], file: Path) -> None:
    for column in columns:
        for row, value in _rows(df[column]):
            if not value:
                raise InputError("empty value", file=file, row=row, field=column)


def _check_reports(exams: pd.DataFrame, file: Path, *, allow_empty: bool = False) -> None:
    for row, report in _rows(exams["report"]):
        if not report.strip() and not allow_empty:
            raise InputError("empty report", file=file, row=row, field="report")
        if "\ufffd" in report:
            raise InputError("report is not valid UTF-8 (replacement character found)",
                             file=file, row=row, field="report")


def _check_paths(images: pd.DataFrame, root: Path, file: Path) -> None:
    resolved_root = root.resolve()
    for row, rel in _rows(images["path"]):
        target = (root / rel).resolve()
        if not target.is_relative_to(resolved_root):
            raise InputError(f"path '{rel}' leads outside the dataset directory", file=file, row=row,
                             field="path")
        if not target.is_file():
            raise InputError(f"image file '{rel}' does not exist", file=file, row=row, field="path")
        if target.stat().st_size == 0:  # an export cut short; caught here, not at the first decode
            raise InputError(f"image file '{rel}' is empty", file=file, row=row, field="path")
