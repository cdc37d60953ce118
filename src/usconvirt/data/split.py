"""The paper's partition (section 3.1), by patient: a labeled subset split into train/val/test, and the
remaining exams as the pre-training pool. No patient ever appears in two parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from usconvirt.data.dataset import LABELS, Dataset
from usconvirt.errors import InputError

PARTS = ("train", "val", "test", "pretrain")


@dataclass
class SplitConfig:
    """Fractions of the paper: 1,051 of 8,011 exams labeled, split 873/47/131."""

    labeled_fraction: float = 0.13  # share of all exams drawn into the labeled subset
    train: float = 0.83  # train/val/test are relative weights within the labeled subset
    val: float = 0.045
    test: float = 0.125
    seed: int = 0


def split_dataset(dataset: Dataset, config: SplitConfig | None = None) -> pd.DataFrame:
    """DataFrame[exam_id, patient_id, part]: every exam of a patient lands in the same part."""
    config = config or SplitConfig()
    _check_config(config)
    exams = dataset.exams[["exam_id", "patient_id"]]
    labeled_exams = set(dataset.images.loc[dataset.images["label"] != "", "exam_id"])
    if not labeled_exams:
        raise InputError("no image has a label: the labeled train/val/test subset needs images.label "
                         "(normal, abnormal, absent)", file=dataset.root, field="label")
    exams_per_patient = exams.groupby("patient_id", sort=True).size()
    candidates = sorted(set(exams.loc[exams["exam_id"].isin(labeled_exams), "patient_id"]))
    rng = np.random.default_rng(config.seed)
    candidates = [candidates[i] for i in rng.permutation(len(candidates))]

    # Draw patients until the labeled subset holds labeled_fraction of all exams; keep one patient for
    # pre-training when the dataset has more than the three that val/test/train need.
    max_labeled = len(candidates) - (len(exams_per_patient) == len(candidates) and len(candidates) > 3)
    counts = exams_per_patient[candidates].to_numpy()
    drawn = _take_until(counts, config.labeled_fraction * len(exams), minimum=min(3, len(candidates)),
                        maximum=max_labeled)
    labeled, counts = candidates[:drawn], counts[:drawn]

    total = config.train + config.val + config.test
    # Train gets a patient first, then val, then test: each part is non-empty when there are patients for it.
    n_val = _take_until(counts, config.val / total * counts.sum(), minimum=int(drawn >= 2),
                        maximum=drawn - 1 - int(drawn >= 3))
    rest = counts[n_val:]
    n_test = _take_until(rest, config.test / total * counts.sum(), minimum=int(drawn >= 3),
                         maximum=len(rest) - 1)
    part_of = {p: "val" for p in labeled[:n_val]}
    part_of |= {p: "test" for p in labeled[n_val : n_val + n_test]}
    part_of |= {p: "train" for p in labeled[n_val + n_test :]}
    out = exams.copy()
    out["part"] = out["patient_id"].map(part_of).fillna("pretrain")
    return out.reset_index(drop=True)


def _take_until(counts: np.ndarray, target: float, *, minimum: int, maximum: int) -> int:
    """How many leading entries of `counts` reach `target` exams, clipped to [minimum, maximum]."""
    reached = int(np.searchsorted(np.cumsum(counts), target - 1e-9) + 1) if target > 0 else 0
    return max(minimum, min(reached, maximum))


def _check_config(config: SplitConfig) -> None:
    if not 0 < config.labeled_fraction <= 1:
        raise InputError(f"labeled fraction must be in (0, 1], got {config.labeled_fraction}",
                         field="labeled_fraction")
    for name in ("train", "val", "test"):
        if getattr(config, name) < 0:
            raise InputError(f"fraction must be >= 0, got {getattr(config, name)}", field=name)
    if config.train + config.val + config.test <= 0:
        raise InputError("train + val + test must be > 0", field="train")


def split_counts(dataset: Dataset, split: pd.DataFrame) -> pd.DataFrame:
    """Per part: exams, patients, images and labeled images per class (the paper's section 3.1 figures)."""
    images = dataset.images.merge(split[["exam_id", "part"]], on="exam_id", how="left")
    rows = []
    for part in PARTS:
        part_exams = split[split["part"] == part]
        part_images = images[images["part"] == part]
        row = {"part": part, "exams": len(part_exams), "patients": part_exams["patient_id"].nunique(),
               "images": len(part_images)}
        row |= {label: int((part_images["label"] == label).sum()) for label in LABELS}
        rows.append(row)
    table = pd.DataFrame(rows)
    total = table.drop(columns="part").sum().to_dict()
    return pd.concat([table, pd.DataFrame([{"part": "total", **total}])], ignore_index=True)
