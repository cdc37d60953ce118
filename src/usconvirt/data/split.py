"""The paper's partition (section 3.1), by patient: the labelled exams split into train/val/test, the
others as the pre-training pool. No patient ever appears in two of train, val, test and pretrain.

A keyed hash of the pseudonymous patient id decides each patient's part, so a patient's part depends on
its own id (and on whether it has labels) only: adding exams of other patients moves nobody, and the test
set stays the test set as the data grows. The price of that stability is that classes are balanced in
expectation, not exactly: any rule under which no addition moves an existing patient must decide each
patient alone, so the per-part class counts vary like independent draws. `split_warnings` says when a
part lacks a class (an error with `strict`).

A team with its own split (hospitals often have one) gives it as `file`: a table of exam_id or
patient_id -> part, validated against the dataset; the hash is then not used.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from usconvirt.config import check_fields
from usconvirt.data.config import SplitConfig
from usconvirt.data.dataset import LABELS, Dataset
from usconvirt.data.dataset import images_file as dataset_images_file
from usconvirt.data.user_tables import read_user_table
from usconvirt.errors import InputError
from usconvirt.io import columns_found, read_table, require_columns, require_known

log = logging.getLogger(__name__)

LABELED_PARTS = ("train", "val", "test")
# `excluded`: exams without labels of a patient whose labelled exams are in train/val/test; kept out of
# pre-training so that the patient stays in one part, and out of train/val/test since they carry no label.
PARTS = (*LABELED_PARTS, "pretrain", "excluded")
CLASSES = ("normal", "abnormal")  # the labels a classifier learns; `absent` frames carry no class


def split_dataset(dataset: Dataset, config: SplitConfig | None = None) -> pd.DataFrame:
    """DataFrame[exam_id, patient_id, part]: a patient's exams share a part, its unlabelled ones aside."""
    config = config or SplitConfig()
    check_fields(config, source="split config")
    exams = dataset.exams[["exam_id", "patient_id"]].astype(str)
    labeled_exams = labeled_exam_ids(dataset)
    if not labeled_exams:
        raise InputError("no image is labelled normal or abnormal: the train/val/test parts need "
                         "images.label", file=dataset.root, field="label")
    is_labeled = exams["exam_id"].isin(labeled_exams)
    if config.file is not None:
        part = _parts_from_file(dataset, Path(config.file))
    else:
        labeled_patients = set(exams.loc[is_labeled, "patient_id"])
        patient_part = {p: _part_of(p, config) for p in labeled_patients}
        part = exams["patient_id"].map(patient_part).fillna("pretrain")
    part[~is_labeled & part.isin(LABELED_PARTS)] = "excluded"
    out = exams.assign(part=part).reset_index(drop=True)
    _report_problems(dataset, out, config)
    return out


def _parts_from_file(dataset: Dataset, path: Path) -> pd.Series:
    """Each exam's part from a team's split file, aligned with dataset.exams; refuses what it cannot trust."""
    table = read_user_table(path).astype(str)  # often saved from a spreadsheet: `;`, cp1252
    key = next((k for k in ("exam_id", "patient_id") if k in table.columns), None)
    if key is None or "part" not in table.columns:
        raise InputError(f"expected columns exam_id or patient_id, and part; {columns_found(table)}",
                         file=path, field="part" if key else "exam_id")
    exams = dataset.exams[["exam_id", "patient_id"]].astype(str)
    known = set(exams[key])
    first_row: dict[str, int] = {}
    for row, (value, part) in enumerate(zip(table[key], table["part"], strict=True), start=1):
        if part not in PARTS:
            raise InputError(f"unknown part '{part}'; expected one of {', '.join(PARTS)}",
                             file=path, row=row, field="part")
        if value not in known:
            raise InputError(f"'{value}' is not in the dataset", file=path, row=row, field=key)
        if value in first_row:
            raise InputError(f"'{value}' is listed twice (first in row {first_row[value]})",
                             file=path, row=row, field=key)
        first_row[value] = row
    part = exams[key].map(dict(zip(table[key], table["part"], strict=True)))
    rows = exams[key].map(first_row)
    labeled = exams["exam_id"].isin(labeled_exam_ids(dataset))
    if (labeled & part.isna()).any():
        exam = exams.loc[labeled & part.isna(), "exam_id"].iloc[0]
        images_file = dataset_images_file(dataset)
        row = int((dataset.images["exam_id"].astype(str) == exam).to_numpy().nonzero()[0][0]) + 1
        raise InputError(f"exam '{exam}' has labelled frames but no part in {path}", file=images_file,
                         row=row, field="exam_id")
    placed = exams.assign(part=part, row=rows).dropna(subset=["part"])
    placed = placed[placed["part"] != "excluded"]
    for patient, group in placed.groupby("patient_id", sort=False):
        if group["part"].nunique() > 1:
            first = group.drop_duplicates("part").sort_values("row")
            raise InputError(f"patient '{patient}' is in two parts: {first['part'].iloc[0]} (row "
                             f"{int(first['row'].iloc[0])}) and {first['part'].iloc[1]}", file=path,
                             row=int(first["row"].iloc[1]), field="part")
    # An unlisted exam joins its patient's listed part if that part is the pool, else stays out.
    patient_part = placed.groupby("patient_id")["part"].first()
    unlisted = part.isna()
    part[unlisted] = exams.loc[unlisted, "patient_id"].map(patient_part).fillna("pretrain")
    part[unlisted & part.isin(LABELED_PARTS)] = "excluded"
    return part


def labeled_exam_ids(dataset: Dataset) -> set[str]:
    """Exams with at least one frame labelled normal or abnormal."""
    images = dataset.images
    return set(images.loc[images["label"].isin(CLASSES), "exam_id"].astype(str))


def read_split(path: str | Path, dataset: Dataset | None = None) -> pd.DataFrame:
    """A split table (`usconvirt split`'s, perhaps edited by hand): exam_id, patient_id and a known part;
    given the dataset it splits, an exam the dataset does not hold (a split of another dataset, which the
    stages would silently intersect with this one) is refused by its row."""
    split = read_table(path)
    require_columns(split, ("exam_id", "patient_id", "part"), path)
    unknown = ~split["part"].astype(str).isin(PARTS)
    if unknown.any():
        row = int(unknown.to_numpy().nonzero()[0][0])
        raise InputError(f"unknown part '{split['part'].iloc[row]}'; expected one of {', '.join(PARTS)}",
                         file=path, row=row + 1, field="part")
    if dataset is not None:
        require_known(split, "exam_id", dataset.exams["exam_id"], path, what="exam")
    return split


def exams_in(split: pd.DataFrame, parts: str | Iterable[str]) -> set[str]:
    """The exam ids of `split` (a split table) in one part or in any of several."""
    wanted = {parts} if isinstance(parts, str) else set(parts)
    unknown = wanted - set(PARTS)
    if unknown:
        raise ValueError(f"unknown split part(s) {sorted(unknown)}; expected some of {list(PARTS)}")
    return set(split.loc[split["part"].isin(wanted), "exam_id"].astype(str))


def patient_hash(patient_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from HMAC-SHA256 keyed by the seed: stable for a patient and a seed."""
    digest = hmac.new(f"usconvirt-split:{seed}".encode(), str(patient_id).encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _part_of(patient_id: str, config: SplitConfig) -> str:
    """A labelled patient's part: below labeled_fraction it is drawn, then val, test, train by weight."""
    u = patient_hash(patient_id, config.seed)
    if u >= config.labeled_fraction:
        return "pretrain"
    u /= config.labeled_fraction  # uniform again on [0, 1) among the drawn patients
    total = config.train + config.val + config.test
    if u < config.val / total:
        return "val"
    if u < (config.val + config.test) / total:
        return "test"
    return "train"


def patient_classes(dataset: Dataset) -> pd.Series:
    """Per patient with labels: 'abnormal' if any of its labelled frames is abnormal, else 'normal'."""
    images = dataset.images[dataset.images["label"].isin(CLASSES)][["exam_id", "label"]].astype(str)
    frames = images.merge(dataset.exams[["exam_id", "patient_id"]].astype(str), on="exam_id")
    abnormal = frames.groupby("patient_id")["label"].agg(lambda labels: (labels == "abnormal").any())
    return abnormal.map({True: "abnormal", False: "normal"}).rename("class")


def split_warnings(dataset: Dataset, split: pd.DataFrame) -> list[str]:
    """One line per part of train/val/test that lacks a class (frames labelled normal or abnormal)."""
    images = dataset.images[["exam_id", "label"]].astype(str).merge(split[["exam_id", "part"]], on="exam_id")
    lines = []
    for part in LABELED_PARTS:
        present = set(images.loc[images["part"] == part, "label"]) & set(CLASSES)
        missing = [c for c in CLASSES if c not in present]
        if missing:
            lines.append(f"split part '{part}' has no {' and no '.join(missing)} frame; fine-tuning and its "
                         "scores need both classes (more labelled patients, other shares or another seed)")
    return lines


def _report_problems(dataset: Dataset, split: pd.DataFrame, config: SplitConfig) -> None:
    problems = split_warnings(dataset, split)
    if problems and config.strict:
        raise InputError(problems[0] + " (strict)", file=dataset.root, field="label")
    for line in problems:
        log.warning(line)
    in_pool = split["part"] == "pretrain"
    unlabeled_in_pool = int((in_pool & ~split["exam_id"].isin(labeled_exam_ids(dataset))).sum())
    if config.labeled_fraction < 1 and unlabeled_in_pool:
        log.warning("labeled_fraction %s sends %.0f%% of the labelled patients to pre-training although %d "
                    "exams without labels already form the pool; 1.0 uses every label",
                    config.labeled_fraction, 100 * (1 - config.labeled_fraction), unlabeled_in_pool)


def split_counts(dataset: Dataset, split: pd.DataFrame) -> pd.DataFrame:
    """Per part and in total: exams, patients (and those abnormal), images and labelled images per class.

    The paper's section 3.1 figures; a patient with exams in a part and in `excluded` counts in both rows,
    once in the total.
    """
    images = dataset.images.merge(split[["exam_id", "part"]], on="exam_id", how="left")
    classes = patient_classes(dataset)
    groups = [(part, split["part"] == part, images["part"] == part) for part in PARTS]
    groups.append(("total", split["part"].notna(), images["part"].notna()))
    rows = []
    for name, exam_rows, image_rows in groups:
        part_images = images[image_rows]
        patients = sorted(set(split.loc[exam_rows, "patient_id"]))
        row = {"part": name, "exams": int(exam_rows.sum()), "patients": len(patients),
               "abnormal_patients": int((classes.reindex(patients) == "abnormal").sum()),
               "images": len(part_images)}
        row |= {label: int((part_images["label"] == label).sum()) for label in LABELS}
        rows.append(row)
    return pd.DataFrame(rows)


def split_summary(counts: pd.DataFrame) -> str:
    """One line of a `split_counts` table: exams and patients per part, labelled frames per class."""
    rows = counts.set_index("part")
    parts = [f"{part} {rows.loc[part, 'exams']} exams / {rows.loc[part, 'patients']} patients "
             f"({rows.loc[part, 'normal']} normal, {rows.loc[part, 'abnormal']} abnormal frames)"
             for part in LABELED_PARTS]
    parts.append(f"pretrain {rows.loc['pretrain', 'exams']} exams")
    if rows.loc["excluded", "exams"]:
        parts.append(f"excluded {rows.loc['excluded', 'exams']} unlabelled exams of labelled patients")
    return "; ".join(parts)
