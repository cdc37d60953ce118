"""Patient-level split: the labeled subset (train/val/test) and the pre-training pool."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usconvirt.data.dataset import Dataset
from usconvirt.data.split import PARTS, SplitConfig, split_counts, split_dataset
from usconvirt.errors import InputError


def _dataset(exams_per_patient: list[int], labeled: list[bool]) -> Dataset:
    """In-memory dataset: patient i has exams_per_patient[i] exams; exam j is labeled if labeled[j % len]."""
    exams, images = [], []
    for p, n in enumerate(exams_per_patient):
        for _ in range(n):
            exam_id = f"e{len(exams)}"
            exams.append({"exam_id": exam_id, "patient_id": f"p{p}", "report": "r"})
            has_label = labeled[(len(exams) - 1) % len(labeled)]
            label = ("normal", "abnormal", "absent")[len(exams) % 3] if has_label else ""
            images.append({"image_id": f"{exam_id}-0", "exam_id": exam_id, "path": "x.png", "label": label})
    return Dataset(Path("."), pd.DataFrame(exams), pd.DataFrame(images))


@settings(max_examples=60, deadline=None)
@given(
    exams_per_patient=st.lists(st.integers(1, 4), min_size=1, max_size=40),
    labeled=st.lists(st.booleans(), min_size=0, max_size=9).map(lambda rest: [True, *rest]),
    labeled_fraction=st.floats(0.01, 1.0),
    weights=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)).filter(
        lambda w: sum(w) > 0
    ),
    seed=st.integers(0, 1000),
)
def test_no_patient_in_two_parts(exams_per_patient, labeled, labeled_fraction, weights, seed):
    ds = _dataset(exams_per_patient, labeled)
    config = SplitConfig(labeled_fraction, *weights, seed=seed)
    split = split_dataset(ds, config)
    assert sorted(split["exam_id"]) == sorted(ds.exams["exam_id"])  # every exam exactly once
    assert set(split["part"]) <= set(PARTS)
    assert (split.groupby("patient_id")["part"].nunique() == 1).all()
    labeled_patients = split[split["part"] != "pretrain"]["patient_id"].nunique()
    # Train first, then val, then test get a patient as soon as the labeled subset has enough of them.
    for need, part in ((1, "train"), (2, "val"), (3, "test")):
        if labeled_patients >= need:
            assert (split["part"] == part).any(), part
    assert split.equals(split_dataset(ds, config))  # deterministic for a seed


def test_paper_proportions_on_a_large_dataset():
    ds = _dataset([1] * 8011, [True])
    split = split_dataset(ds, SplitConfig())
    counts = split["part"].value_counts()
    labeled = 0.13 * 8011  # the paper's 1,051 / 8,011 rounded to the default fraction
    assert counts["train"] + counts["val"] + counts["test"] == pytest.approx(labeled, abs=1)
    assert counts["val"] == pytest.approx(0.045 * labeled, abs=1)
    assert counts["test"] == pytest.approx(0.125 * labeled, abs=1)


def test_unlabeled_patients_go_to_pretraining():
    ds = _dataset([1] * 30, [True, False])
    split = split_dataset(ds, SplitConfig(labeled_fraction=1.0))
    labeled = set(ds.images.loc[ds.images["label"] != "", "exam_id"])
    assert set(split.loc[split["part"] != "pretrain", "exam_id"]) <= labeled
    assert (split["part"] == "pretrain").sum() >= 15


def test_no_labels_is_an_input_error():
    with pytest.raises(InputError, match="label"):
        split_dataset(_dataset([2, 2], [False]), SplitConfig())


def test_counts_table():
    ds = _dataset([2] * 20, [True])
    split = split_dataset(ds, SplitConfig(labeled_fraction=0.5))
    counts = split_counts(ds, split).set_index("part")
    assert list(counts.index) == [*PARTS, "total"]
    assert counts.loc["total", "exams"] == 40 and counts.loc["total", "images"] == 40
    assert counts.loc["total", ["normal", "abnormal", "absent"]].sum() == 40
    assert counts.loc["pretrain", "exams"] == 40 - counts.loc[["train", "val", "test"], "exams"].sum()


def test_split_cli_writes_table_and_prints_counts(tmp_path, cli, write_dataset, dataset_rows):
    root = write_dataset(tmp_path / "ds", *dataset_rows(n_patients=12))
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out, "--labeled-fraction", "0.5", "--seed", "3")
    assert code == 0, text
    split = pd.read_csv(out, dtype=str)
    assert list(split.columns) == ["exam_id", "patient_id", "part"]
    assert (split.groupby("patient_id")["part"].nunique() == 1).all()
    for word in ("train", "val", "test", "pretrain", "normal", "abnormal", "absent"):
        assert word in text


def test_split_cli_without_labels_fails_and_writes_nothing(tmp_path, cli, write_dataset, dataset_rows):
    exams, images = dataset_rows(n_patients=4)
    root = write_dataset(tmp_path / "ds", exams, [{**i, "label": ""} for i in images])
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out)
    assert code == 2 and "field 'label'" in text and str(root) in text
    assert not out.exists() and not list(tmp_path.glob(".split.csv*"))
