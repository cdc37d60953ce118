"""Patient-level split: labelled train/val/test, the pre-training pool, stable as the data grows."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usconvirt.data.dataset import Dataset
from usconvirt.data.split import (
    LABELED_PARTS,
    PARTS,
    SplitConfig,
    exams_in,
    labeled_exam_ids,
    patient_classes,
    read_split,
    split_counts,
    split_dataset,
    split_summary,
    split_warnings,
)
from usconvirt.errors import InputError

# Per exam kind: "" unlabelled, "n" normal, "a" an abnormal frame beside a normal one, "x" absent only.
FRAMES = {"": ["", ""], "n": ["normal", "absent"], "a": ["abnormal", "normal"], "x": ["absent"]}


def _dataset(patients: dict[str, list[str]]) -> Dataset:
    """In-memory dataset: patient id -> the kinds of its exams (keys of FRAMES)."""
    exams, images = [], []
    for patient, kinds in patients.items():
        for e, kind in enumerate(kinds):
            exam_id = f"{patient}-e{e}"
            exams.append({"exam_id": exam_id, "patient_id": patient, "report": "r"})
            images += [{"image_id": f"{exam_id}-{i}", "exam_id": exam_id, "path": "x.png", "label": label}
                       for i, label in enumerate(FRAMES[kind])]
    return Dataset(Path("."), pd.DataFrame(exams), pd.DataFrame(images))


def _patients(kinds: list[list[str]], prefix: str = "p") -> dict[str, list[str]]:
    return {f"{prefix}{i}": k for i, k in enumerate(kinds)}


EXAM_KINDS = st.lists(st.sampled_from(["", "n", "a", "x"]), min_size=1, max_size=3)
FRACTION = st.floats(0.05, 1.0)
WEIGHTS = st.tuples(*[st.floats(0.0, 1.0)] * 3).filter(lambda w: sum(w) > 0)


@settings(max_examples=60, deadline=None)
@given(kinds=st.lists(EXAM_KINDS, min_size=1, max_size=40), fraction=FRACTION, weights=WEIGHTS,
       seed=st.integers(0, 1000))
def test_labels_decide_the_parts(kinds, fraction, weights, seed):
    kinds[0] = [*kinds[0], "a"]  # at least one labelled exam
    ds = _dataset(_patients(kinds))
    split = split_dataset(ds, SplitConfig(fraction, *weights, seed=seed))
    assert sorted(split["exam_id"]) == sorted(ds.exams["exam_id"])  # every exam exactly once
    assert set(split["part"]) <= set(PARTS)
    used_parts = split[split["part"] != "excluded"].groupby("patient_id")["part"].nunique()
    assert (used_parts == 1).all()  # no patient in two of train/val/test/pretrain
    labeled = labeled_exam_ids(ds)
    # No unlabelled exam in train/val/test; no labelled exam outside them except the pool's share by design.
    assert exams_in(split, LABELED_PARTS) <= labeled
    assert not labeled & exams_in(split, "excluded")
    all_labels = split_dataset(ds, SplitConfig(1.0, *weights, seed=seed))
    assert exams_in(all_labels, "pretrain") == set(ds.exams["exam_id"]) - labeled - exams_in(all_labels,
                                                                                              "excluded")
    assert split.equals(split_dataset(ds, SplitConfig(fraction, *weights, seed=seed)))  # deterministic


@settings(max_examples=40, deadline=None)
@given(old=st.lists(EXAM_KINDS, min_size=1, max_size=30), new=st.lists(EXAM_KINDS, min_size=1, max_size=30),
       fraction=FRACTION, weights=WEIGHTS, seed=st.integers(0, 1000))
def test_adding_patients_moves_no_existing_patient(old, new, fraction, weights, seed):
    old[0] = [*old[0], "n"]
    config = SplitConfig(fraction, *weights, seed=seed)
    before = split_dataset(_dataset(_patients(old)), config)
    after = split_dataset(_dataset(_patients(old) | _patients(new, prefix="q")), config)
    kept = after.set_index("exam_id").loc[before["exam_id"], "part"]
    assert list(kept) == list(before["part"])


def test_exams_added_to_an_unlabelled_patient_move_only_that_patient():
    old = _patients([["n"], ["a", ""], [""], ["n", "n"]] * 10)
    grown = {**old, "p2": ["", "a"]}  # p2 gets its first label: it leaves the pool, nobody else moves
    config = SplitConfig(labeled_fraction=1.0)
    before = split_dataset(_dataset(old), config).set_index("exam_id")["part"]
    after = split_dataset(_dataset(grown), config).set_index("exam_id")["part"]
    moved = {e for e in before.index if before[e] != after[e]}
    assert moved == {"p2-e0"} and after["p2-e0"] == "excluded" and after["p2-e1"] in LABELED_PARTS


def test_mixed_patient_keeps_unlabelled_exams_out_of_the_pool():
    ds = _dataset(_patients([["a", "", "x"], ["n"]] * 30))
    split = split_dataset(ds, SplitConfig(labeled_fraction=1.0)).set_index("exam_id")["part"]
    for p in range(0, 60, 2):
        assert split[f"p{p}-e0"] in LABELED_PARTS
        assert split[f"p{p}-e1"] == split[f"p{p}-e2"] == "excluded"  # absent-only exams have no class


def test_both_classes_in_every_part_and_shares_per_class():
    # 600 patients, a third abnormal; paper-like shares: every part gets both classes and each class is
    # split in about the configured proportions (independent draws: a few points either way).
    ds = _dataset(_patients([["n"], ["n", "n"], ["a", "n"]] * 200))
    config = SplitConfig(labeled_fraction=0.5, train=0.6, val=0.1, test=0.3)
    split = split_dataset(ds, config)
    assert split_warnings(ds, split) == []
    part = split.drop_duplicates("patient_id").set_index("patient_id")["part"]
    classes = patient_classes(ds)
    for cls, n in (("normal", 400), ("abnormal", 200)):
        shares = part[classes.index[classes == cls]].value_counts() / n
        for name, target in (("pretrain", 0.5), ("train", 0.3), ("val", 0.05), ("test", 0.15)):
            assert shares.get(name, 0) == pytest.approx(target, abs=4 * (target * (1 - target) / n) ** 0.5)


def test_paper_proportions_on_a_large_dataset():
    ds = _dataset(_patients([["n"]] * 1051 + [[""]] * 6960))
    counts = split_dataset(ds, SplitConfig())["part"].value_counts()
    assert counts["pretrain"] == 6960 and counts[list(LABELED_PARTS)].sum() == 1051
    for part, share in (("train", 0.83), ("val", 0.045), ("test", 0.125)):
        assert counts[part] == pytest.approx(share * 1051, abs=4 * (share * (1 - share) * 1051) ** 0.5)


def test_a_part_without_a_class_warns_and_strict_refuses(caplog):
    ds = _dataset(_patients([["n"]] * 20 + [["a"]]))
    with caplog.at_level(logging.WARNING, logger="usconvirt.data.split"):
        split = split_dataset(ds, SplitConfig())
    assert split_warnings(ds, split)
    assert any("no abnormal frame" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="no abnormal frame.*strict"):
        split_dataset(ds, SplitConfig(strict=True))


def test_no_labels_is_an_input_error():
    with pytest.raises(InputError, match="label"):
        split_dataset(_dataset(_patients([["", "x"], [""]])), SplitConfig())


def test_bad_fraction_is_an_input_error():
    with pytest.raises(InputError, match="labeled_fraction"):
        split_dataset(_dataset(_patients([["n"]])), SplitConfig(labeled_fraction=0.0))


def test_exams_in_refuses_unknown_parts():
    split = pd.DataFrame({"exam_id": ["a", "b"], "part": ["train", "pretrain"]})
    assert exams_in(split, "train") == {"a"} and exams_in(split, ["train", "pretrain"]) == {"a", "b"}
    with pytest.raises(ValueError, match="tain"):
        exams_in(split, "tain")


def test_counts_table():
    ds = _dataset(_patients([["n", ""], ["a"], [""]] * 10))
    split = split_dataset(ds, SplitConfig(labeled_fraction=0.5))
    counts = split_counts(ds, split).set_index("part")
    assert list(counts.index) == [*PARTS, "total"]
    assert counts.loc["total", "exams"] == 40 and counts.loc["total", "patients"] == 30
    assert counts.loc["total", "abnormal_patients"] == 10 and counts.loc["total", "abnormal"] == 10
    assert counts.loc["total", "images"] == 80
    assert counts.loc["excluded", "exams"] == (split["part"] == "excluded").sum() > 0
    line = split_summary(split_counts(ds, split))
    train = counts.loc["train"]
    assert f"train {train['exams']} exams / {train['patients']} patients ({train['normal']} normal" in line
    assert "excluded" in line


def test_split_cli_writes_table_and_prints_counts(tmp_path, cli, write_dataset, dataset_rows):
    root = write_dataset(tmp_path / "ds", *dataset_rows(n_patients=12))
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out, "--labeled-fraction", "0.5", "--seed", "3")
    assert code == 0, text
    split = pd.read_csv(out, dtype=str)
    assert list(split.columns) == ["exam_id", "patient_id", "part"]
    assert (split.groupby("patient_id")["part"].nunique() == 1).all()
    for word in ("train", "val", "test", "pretrain", "excluded", "normal", "abnormal", "total"):
        assert word in text


def test_finetuning_on_another_datasets_split_names_the_row(tmp_path, cli, write_dataset, dataset_rows):
    root = write_dataset(tmp_path / "ds", *dataset_rows(n_patients=12))
    split = tmp_path / "split.csv"
    assert cli("split", root, "--out", split)[0] == 0
    table = pd.read_csv(split, dtype=str)
    table.loc[2, "exam_id"] = "exam-of-another-dataset"
    table.to_csv(split, index=False)
    code, text = cli("finetune", "--dataset", root, "--split", split, "--out", tmp_path / "ft",
                     "--arch", "tiny")
    assert code == 2, text
    assert text.strip() == f"error: {split}, row 3, field 'exam_id': exam 'exam-of-another-dataset' is " \
        "not in the dataset"
    assert not (tmp_path / "ft").exists()


def test_split_cli_strict_fails_and_writes_nothing(tmp_path, cli, write_dataset, dataset_rows):
    exams, images = dataset_rows(n_patients=4)
    root = write_dataset(tmp_path / "ds", exams, [{**i, "label": "normal"} for i in images])
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out, "--strict")
    assert code == 2 and "no abnormal frame" in text and str(root) in text
    assert not out.exists()


def test_split_cli_without_labels_fails_and_writes_nothing(tmp_path, cli, write_dataset, dataset_rows):
    exams, images = dataset_rows(n_patients=4)
    root = write_dataset(tmp_path / "ds", exams, [{**i, "label": ""} for i in images])
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out)
    assert code == 2 and "field 'label'" in text and str(root) in text
    assert not out.exists() and not list(tmp_path.glob(".split.csv*"))


# --- a team's own split file ---------------------------------------------------------------------------
def _split_file(tmp_path: Path, rows: list[tuple[str, str]], key: str = "exam_id") -> str:
    path = tmp_path / "team_split.csv"
    pd.DataFrame(rows, columns=[key, "part"]).to_csv(path, index=False)
    return str(path)


def test_split_file_by_exam_sets_the_parts_and_the_unlisted_exams_join_the_pool(tmp_path):
    # p0: a labelled exam and an unlabelled one; p1, p2 labelled; p3 unlabelled and unlisted.
    ds = _dataset({"p0": ["a", ""], "p1": ["n"], "p2": ["a"], "p3": [""]})
    rows = [("p0-e0", "train"), ("p1-e0", "val"), ("p2-e0", "test")]
    split = split_dataset(ds, SplitConfig(file=_split_file(tmp_path, rows), seed=99))
    assert dict(zip(split["exam_id"], split["part"], strict=True)) == {
        "p0-e0": "train", "p0-e1": "excluded", "p1-e0": "val", "p2-e0": "test", "p3-e0": "pretrain"}


def test_split_file_by_patient(tmp_path):
    ds = _dataset({"p0": ["a", "n"], "p1": ["n"], "p2": ["a", ""]})
    path = _split_file(tmp_path, [("p0", "train"), ("p1", "val"), ("p2", "pretrain")], key="patient_id")
    split = split_dataset(ds, SplitConfig(file=path))
    assert split.groupby("patient_id")["part"].first().to_dict() == {"p0": "train", "p1": "val",
                                                                      "p2": "pretrain"}


def test_split_file_saved_by_a_french_spreadsheet(tmp_path):
    ds = _dataset({"p0": ["a", "n"], "p1": ["n"], "p2": ["a"]})
    path = tmp_path / "répartition.csv"
    path.write_bytes("patient_id;part\r\np0;train\r\np1;val\r\np2;test\r\n".encode("cp1252"))
    split = split_dataset(ds, SplitConfig(file=str(path)))
    assert split.groupby("patient_id")["part"].first().to_dict() == {"p0": "train", "p1": "val", "p2": "test"}


@pytest.mark.parametrize(("rows", "expected"), [
    ([("p0-e0", "train"), ("p1-e0", "holdout")], ["row 2", "field 'part'", "unknown part 'holdout'"]),
    ([("p0-e0", "train"), ("p0-e1", "test"), ("p1-e0", "val")],
     ["row 2", "field 'part'", "patient 'p0' is in two parts: train (row 1) and test"]),
    ([("p0-e0", "train"), ("p0-e1", "train")], ["images.csv", "row 5", "field 'exam_id'", "p1-e0"]),
    ([("p0-e0", "train"), ("p1-e0", "val"), ("p9-e0", "test")], ["row 3", "field 'exam_id'", "p9-e0"]),
    ([("p0-e0", "train"), ("p1-e0", "val"), ("p0-e0", "test")], ["row 3", "listed twice"]),
])
def test_split_file_problems_are_one_line_errors_naming_file_row_and_field(tmp_path, rows, expected):
    ds = _dataset({"p0": ["a", "n"], "p1": ["n"]})
    path = _split_file(tmp_path, rows)
    with pytest.raises(InputError) as error:
        split_dataset(ds, SplitConfig(file=path))
    message = str(error.value)
    assert "\n" not in message and all(part in message for part in expected), message
    if "images.csv" not in expected:
        assert message.startswith(path)


def test_split_cli_takes_a_split_file(tmp_path, cli, write_dataset, dataset_rows):
    exams, images = dataset_rows(n_patients=4)
    root = write_dataset(tmp_path / "ds", exams, images)
    parts = {"p0": "train", "p1": "train", "p2": "val", "p3": "test"}
    team = _split_file(tmp_path, list(parts.items()), key="patient_id")
    out = tmp_path / "split.csv"
    code, text = cli("split", root, "--out", out, "--file", team)
    assert code == 0, text
    split = pd.read_csv(out, dtype=str)
    assert split.groupby("patient_id")["part"].first().to_dict() == parts
    code, text = cli("split", root, "--out", tmp_path / "bad.csv", "--file", tmp_path / "none.csv")
    assert code == 2 and "none.csv" in text and not (tmp_path / "bad.csv").exists()


def test_pipeline_config_takes_split_file():
    from usconvirt.pipeline_config import validate_pipeline_config

    assert validate_pipeline_config({"split": {"file": "team.csv"}}).split.file == "team.csv"


def test_a_hand_edited_split_with_an_unknown_part_is_refused_with_its_row(tmp_path: Path):
    path = tmp_path / "split.csv"
    path.write_text("exam_id,patient_id,part\ne1,p1,train\ne2,p2,tset\n")
    with pytest.raises(InputError, match="unknown part 'tset'") as error:
        read_split(path)
    assert (error.value.row, error.value.field) == (2, "part") and str(path) in str(error.value)
    path.write_text("exam_id,part\ne1,train\n")
    with pytest.raises(InputError, match="patient_id"):
        read_split(path)
