"""Weak labels from the reports: each exam's kidney (and each side's) read abnormal, normal or unknown.

The labels come from the sentence stage's output alone (its negation-aware `abnormal` column and its
`laterality`), never from `images.label`, `images.side` or a synthetic truth table, so a real export has
them. They are what a CheXpert-style labeller gives, and what the `report_labels` initialisation and
`pretrain.report_label_weight` train on.

- Exam: abnormal when one of its organ sentences states a finding, normal when one states normality and
  none a finding, unknown when it has no organ sentence or only undecided ones (hypotheses, questions,
  measurements: `abnormal` missing).
- Side (left, right): the same rule over the sentences naming that side or both; a side is not called
  normal while a sentence naming no side states a finding (that finding may be on it).
- Each label keeps the ids of the sentences that decided it (`exam_id:start-end`, `;`-joined; for
  unknown, the undecided ones), so any label can be read back in the report.

A frame's label (`frame_labels`) is its side's when the images table's exported `laterality` (DICOM tag
or burned-in annotation) names a side that has a label, else its exam's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from usconvirt.io import read_table, require_columns
from usconvirt.pairing import frame_laterality

log = logging.getLogger(__name__)

SENTENCE_COLUMNS = ("exam_id", "start", "end", "organ", "laterality", "abnormal")
SIDES = ("right", "left")
LABELS = ("normal", "abnormal")  # class index 0, 1 in training; "unknown" frames are not trained on
UNKNOWN = "unknown"
UNKNOWN_CODE = -1  # the class index of an unknown label: the frame is not trained on
WEAK_LABEL_COLUMNS = ("exam_id", "label", "sentence_ids", *(f"{side}{suffix}" for side in SIDES
                                                           for suffix in ("", "_sentence_ids")))


def sentence_id(exam_id: str, start: int, end: int) -> str:
    """A sentence's id: where it lies in its exam's report."""
    return f"{exam_id}:{start}-{end}"


def read_verdict(rows: pd.DataFrame) -> tuple[str, str]:
    """(label, the ids of the sentences behind it) for the sentences `rows` (columns id, abnormal)."""
    for label, verdict in (("abnormal", True), ("normal", False)):
        ids = rows.loc[rows["abnormal"] == verdict, "id"].tolist()  # NA (undecided) never equals
        if ids:
            return label, ";".join(ids)
    return UNKNOWN, ";".join(rows["id"])


def exam_weak_labels(exam_id: str, rows: pd.DataFrame) -> dict[str, object]:
    """One exam's row: its label, and each side's, with their sentence ids."""
    label, ids = read_verdict(rows)
    row: dict[str, object] = {"exam_id": exam_id, "label": label, "sentence_ids": ids}
    unsided_finding = bool((rows["abnormal"].fillna(False) & (rows["laterality"] == "unspecified")).any())
    for side in SIDES:
        side_label, side_ids = read_verdict(rows[rows["laterality"] == side])
        if side_label == UNKNOWN:
            side_label, side_ids = read_verdict(rows[rows["laterality"].isin((side, "both"))])
        if side_label == "normal" and unsided_finding:
            side_label, side_ids = UNKNOWN, ""
        row[side], row[f"{side}_sentence_ids"] = side_label, side_ids
    return row


def weak_labels(sentences: pd.DataFrame, exam_ids: Iterable[str] | None = None, *, organ: str = "kidney",
                source: str = "sentences") -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per exam of `exam_ids` (default: the exams of `sentences`) and the label counts."""
    require_columns(sentences, SENTENCE_COLUMNS, source)
    organ_rows = sentences[sentences["organ"].astype(str) == organ].sort_values(["exam_id", "start"])
    organ_rows = pd.DataFrame({
        "exam_id": organ_rows["exam_id"].astype(str),
        "id": [sentence_id(*key) for key in zip(organ_rows["exam_id"].astype(str), organ_rows["start"],
                                                 organ_rows["end"], strict=True)],
        "laterality": organ_rows["laterality"].fillna("unspecified").astype(str),
        "abnormal": organ_rows["abnormal"].astype("boolean"),
    })
    by_exam = dict(tuple(organ_rows.groupby("exam_id", sort=False)))
    exams = list(dict.fromkeys(map(str, exam_ids))) if exam_ids is not None else list(by_exam)
    empty = organ_rows.iloc[:0]
    table = pd.DataFrame([exam_weak_labels(e, by_exam.get(e, empty)) for e in exams],
                         columns=list(WEAK_LABEL_COLUMNS))
    accounting = {"exams": len(table), "without_sentences": sum(e not in by_exam for e in exams)}
    for column in ("label", *SIDES):
        counts = table[column].value_counts()
        prefix = "exam" if column == "label" else column
        accounting |= {f"{prefix}_{value}": int(counts.get(value, 0)) for value in (*LABELS, UNKNOWN)}
    log.info("weak labels: %s", accounting)
    return table, accounting


def label_code(label: str) -> int:
    """A label's class index: 0 normal, 1 abnormal, UNKNOWN_CODE otherwise."""
    return LABELS.index(label) if label in LABELS else UNKNOWN_CODE


def exam_codes(exam_ids: Iterable[str], labels: pd.DataFrame) -> list[int]:
    """Each exam's class index from a weak-label table (an exam it does not hold: unknown)."""
    by_exam = dict(zip(labels["exam_id"].astype(str), labels["label"], strict=True))
    return [label_code(by_exam.get(str(exam), UNKNOWN)) for exam in exam_ids]


def frame_labels(images: pd.DataFrame, image_ids: list[str], labels: pd.DataFrame) -> list[int]:
    """Each frame's class index (0 normal, 1 abnormal, UNKNOWN_CODE) from its exam's weak labels.

    `images` is the images table indexed by image_id; a frame whose exported laterality names a side
    takes that side's label when it has one, any other its exam's. `images.side` is never read.
    """
    exams = images.loc[image_ids, "exam_id"].astype(str).tolist()
    sides = frame_laterality(images, pd.Series(image_ids), required=False)
    by_exam = labels.astype({"exam_id": str}).set_index("exam_id")
    codes = []
    for exam, exam_code, side in zip(exams, exam_codes(exams, labels), sides, strict=True):
        side_label = by_exam.at[exam, side] if side in SIDES and exam in by_exam.index else UNKNOWN
        codes.append(exam_code if side_label == UNKNOWN else label_code(side_label))
    return codes


def load_weak_labels(path: str | Path) -> pd.DataFrame:
    """Read weak_labels.parquet (or .csv) back."""
    table = read_table(path)
    require_columns(table, WEAK_LABEL_COLUMNS, path)
    return table
