"""The real-frame bench's dataset builder, on a tiny fold tree made here (no real data in tests)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench" / "real_kidney.py"


@pytest.fixture(scope="module")
def real_kidney():
    spec = importlib.util.spec_from_file_location("real_kidney", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frame(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((16, 16), value, np.uint8)
    pixels[0, 0] = 255 - value  # distinct frames differ in their pixels
    Image.fromarray(pixels).save(path)


@pytest.fixture
def folds(tmp_path) -> Path:
    """Folds 1-10: two frames (and a mask) per fold and label; fold 8 holds a copy of a fold-5 frame under
    another name, and fold 2 a frame whose copy in fold 3 carries the other label."""
    root = tmp_path / "repo"
    for fold in range(1, 11):
        for k, label in enumerate(("abnormal", "normal")):
            for i in range(2):
                _frame(root / "data" / str(fold) / label / f"s{fold}{label[0]}_US1_-1_Frame{i}.jpg",
                       value=fold * 20 + k * 8 + i)
            _frame(root / "data" / str(fold) / label / f"s{fold}{label[0]}_US1_-1_Frame0_M.jpg", value=1)
    _frame(root / "data" / "8" / "abnormal" / "other_103.jpg", value=5 * 20 + 0)  # = fold 5's s5a Frame0
    _frame(root / "data" / "2" / "abnormal" / "clash_007.jpg", value=3)
    _frame(root / "data" / "3" / "normal" / "clash2_Frame12.jpg", value=3)
    return root


def test_series_is_the_name_without_its_frame_index(real_kidney):
    assert real_kidney.series_of("130510_1305160063_103") == "130510_1305160063"
    assert real_kidney.series_of("1258440013_Frame57") == "1258440013"
    assert real_kidney.series_of("_hydro_A_20210201_S0000001_US000006_-1_Frame0") == \
        "_hydro_A_20210201_S0000001_US000006"


def test_held_out_folds_are_refused_and_never_read(real_kidney, folds):
    for fold in (9, 10):
        with pytest.raises(ValueError, match="held out"):
            real_kidney.read_folds(folds, {1: "pool", fold: "test"})
    frames = real_kidney.read_folds(folds)
    assert set(frames["fold"]) == set(range(1, 9)) and not frames["name"].str.endswith("_M").any()
    assert not frames["source"].str.contains("/data/9/|/data/10/").any()


def test_exact_duplicates_are_dropped_keeping_the_test_copy(real_kidney, folds):
    frames, counts = real_kidney.drop_duplicates(real_kidney.read_folds(folds))
    assert counts["frames read"] == 8 * 4 + 3 and counts["label conflicts dropped"] == 2
    assert counts["duplicates dropped"] == 1 and counts["of which copies of another part's frame"] == 1
    assert "other_103" in set(frames["name"]) and "s5a_US1_-1_Frame0" not in set(frames["name"])
    assert not frames["name"].str.startswith("clash").any() and frames["digest"].is_unique


def test_dataset_reports_and_split_file_load_through_the_package(real_kidney, folds, tmp_path):
    from usconvirt.data import load_dataset
    from usconvirt.data.split import SplitConfig, split_dataset

    work = tmp_path / "work"
    frames, images, _ = real_kidney.build_dataset(folds, work)
    exams = real_kidney.series_reports(frames, seed=0)
    root = real_kidney.draw_dataset(work, 0, images, exams)
    ds = load_dataset(root)
    assert len(ds.images) == len(frames) and set(ds.images["label"]) == {"normal", "abnormal"}
    abnormal = set(frames.loc[frames["label"] == "abnormal", "series"])
    for exam_id, report in zip(exams["exam_id"], exams["report"], strict=True):
        assert ("Dilatation" in report or "Hydronéphrose" in report) == (exam_id in abnormal), report
    labelled = real_kidney.labelled_series(frames, 0.1, draw=0)
    assert set(labelled) <= set(frames.loc[frames["part"] == "pool", "series"])
    assert set(labelled) <= set(real_kidney.labelled_series(frames, 0.5, draw=0))  # nested fractions
    path = real_kidney.write_csv_once(real_kidney.split_table(frames, labelled), tmp_path / "split.csv")
    split = split_dataset(ds, SplitConfig(file=str(path)))
    part = split.set_index("exam_id")["part"]
    assert set(part[list(labelled)]) == {"train"}
    assert set(part[frames.loc[frames["fold"] == 7, "series"]]) == {"val"}
    assert set(part[frames.loc[frames["fold"] == 8, "series"]]) == {"test"}
    assert not list(Path(BENCH).parent.parent.glob("**/s1a_US1*.png"))  # nothing written to the repo


def test_a_git_copy_gives_folds_1_to_8_only(real_kidney, folds, tmp_path):
    git = ["git", "-C", str(folds), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "folds"], check=True)
    tree = real_kidney.extracted(folds / ".git", tmp_path / "work")
    assert sorted(p.name for p in (tree / "data").iterdir()) == [str(f) for f in range(1, 9)]
    assert (tree / "data" / "8" / "abnormal" / "other_103.jpg").is_file()


def test_a_work_directory_inside_a_repository_is_refused(real_kidney, tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    with pytest.raises(ValueError, match="inside the repository"):
        real_kidney.outside_repositories(tmp_path / "repo" / "runs" / "work")
    assert real_kidney.outside_repositories(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def test_a_finished_fine_tuning_is_reused_only_with_the_same_settings(real_kidney, tmp_path):
    from dataclasses import replace

    from usconvirt.config import save_yaml, to_dict
    from usconvirt.training.config import FinetuneConfig

    run = tmp_path / "convirt"
    tuned = FinetuneConfig(init="convirt:/elsewhere/pretrain", class_balance="sampler")
    run.mkdir()
    (run / "predictions.csv").write_text("image_id\n")
    assert not real_kidney.finished(run, tuned)  # config.yaml comes last: a run killed before it is redone
    save_yaml(to_dict(tuned), run / "config.yaml")
    assert real_kidney.finished(run, replace(tuned, init="convirt:/copy/pretrain"))
    with pytest.raises(ValueError, match="class_balance 'sampler', asked 'weights'"):
        real_kidney.finished(run, replace(tuned, class_balance="weights"))


def test_variants_are_paired_cell_by_cell(real_kidney):
    import pandas as pd

    rows = [{"protocol": "f1_at_half", "class_balance": balance, "fraction": 0.1, "draw": draw, "seed": 0,
             "init": init, "f1": 0.5 + shift + 0.1 * (init == "convirt") + 0.01 * draw, "auc": 0.7}
            for balance, shift in (("none", 0.0), ("weights", 0.02), ("sampler", -0.04))
            for draw in range(2) for init in ("random", "convirt")]
    lines = real_kidney.paired(pd.DataFrame(rows))
    won = "(sd 0.000; won {} of 2 cells)"
    assert f"0.1 f1: convirt, f1_at_half sampler minus f1_at_half weights -0.060 {won.format(0)}" in lines
    assert f"0.1 f1: random, f1_at_half weights minus f1_at_half none +0.020 {won.format(2)}" in lines
    assert f"f1_at_half none 0.1 f1: convirt minus random +0.100 {won.format(2)}" in lines


def test_pretrained_from_takes_a_finished_draw_only_when_up_to_date(real_kidney, tmp_path):
    import pandas as pd
    import yaml

    from usconvirt.pipeline import Stage, save_manifest, stage_key
    from usconvirt.pipeline_config import validate_pipeline_config
    from usconvirt.run_layout import RunLayout

    source = tmp_path / "study" / "draw0"
    config = {**yaml.safe_load((BENCH.parents[1] / "configs" / "demo.yaml").read_text()),
              "dataset": str(source / "dataset"), "out": str(source)}
    encoder = Stage("pretrain", lambda c, layout: "", inputs=lambda c, layout: [source / "split.csv"],
                    outputs=lambda c, layout: [source / "encoder.pt"], sections=("pretrain",))
    table = pd.DataFrame({"patient_id": ["a"], "part": ["train"]})
    tables = {source / "bench_split.csv": table}
    real_kidney.write_csv_once(table, source / "bench_split.csv")
    (source / "split.csv").write_text("x")
    (source / "encoder.pt").write_text("weights")
    with pytest.raises(ValueError, match="pretrain differ"):  # no manifest: never finished there
        real_kidney.pretrained(config, [encoder], tables)
    layout = RunLayout(source)
    key = stage_key(validate_pipeline_config(config), layout, encoder)
    save_manifest(layout, {"stages": {"pretrain": key}})
    settings, layout = real_kidney.pretrained(config, [encoder], tables)
    assert layout.out == source and layout.pretrain == source / "pretrain"
    reseeded = {**config, "pretrain": {**config["pretrain"], "seed": 5}}
    with pytest.raises(ValueError, match="pretrain differ"):  # encoders of another config
        real_kidney.pretrained(reseeded, [encoder], tables)
    with pytest.raises(ValueError, match="bench_split.csv differ"):  # another split than this study's
        real_kidney.pretrained(config, [encoder], {source / "bench_split.csv": table.assign(part="val")})
