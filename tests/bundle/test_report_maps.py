"""The run report's Grad-CAM section on the tiny run: kidney regions, the pointing game, the galleries."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from usconvirt.data import load_dataset
from usconvirt.evaluation.report import maps_section
from usconvirt.evaluation.report_maps import InitMaps, gallery_rows, init_maps, kidney_regions, pointing_game
from usconvirt.run_layout import RunLayout


@pytest.fixture(scope="module")
def maps(exported):
    kept = exported["kept"]
    dataset = load_dataset(kept / "dataset")
    result = init_maps(kept / "finetune", dataset)
    abnormal = result.predictions.loc[result.predictions["label"].astype(int) == 1, "image_id"].tolist()
    return dataset, result, kidney_regions(dataset, abnormal, result.frames.shape[-1])


def test_the_kidney_regions_of_abnormal_test_frames_lie_in_the_frame(maps):
    _, result, regions = maps
    size = result.frames.shape[-1]
    assert regions and all(r.shape == (size, size) and 0 < r.mean() < 0.8 for r in regions.values())
    assert result.maps.shape == result.frames.shape and np.isfinite(result.maps).all()


def test_the_pointing_game_scores_an_oracle_map_1_and_a_corner_map_0(maps):
    _, result, regions = maps
    ids = result.predictions["image_id"]
    empty = np.zeros(result.frames.shape[1:], bool)
    oracle = np.stack([regions.get(i, empty).astype(np.float32) for i in ids])
    corner = np.zeros_like(oracle)
    corner[:, 0, 0] = 1.0  # outside the sector: never in a kidney
    for heat, expected in ((oracle, 1.0), (corner, 0.0)):
        scored = pointing_game(InitMaps("x", result.predictions, result.frames, heat), regions,
                               n_bootstrap=50)
        assert scored["frames"] == len(regions) and scored["hit_rate"] == expected
        assert scored["ci_low"] == scored["ci_high"] == expected and 0 < scored["chance"] < 1
    real = pointing_game(result, regions, n_bootstrap=50)
    assert real["ci_low"] <= real["hit_rate"] <= real["ci_high"]


def test_the_report_section_shows_the_pointing_game_and_captioned_frames(exported, tmp_path):
    kept = exported["kept"]
    run = tmp_path / "run"
    shutil.copytree(kept / "finetune", run / "finetune" / "random")
    blocks = maps_section(RunLayout(run), load_dataset(kept / "dataset"))
    kinds = [b["kind"] for b in blocks]
    assert "figure" in kinds and kinds.count("gallery") == 1
    pointing = next(b for b in blocks if b["kind"] == "table")
    assert pointing["rows"][0][0] == "random" and "(" in pointing["rows"][0][3]  # rate with its interval
    captions = [image["caption"] for image in next(b for b in blocks if b["kind"] == "gallery")["images"]]
    assert captions and all("P(abnormal)" in c for c in captions)
    assert not any(i in str(blocks) for i in load_dataset(kept / "dataset").images["image_id"])  # no ids


def test_the_gallery_takes_the_most_wrong_frames_and_copes_without_errors():
    predictions = pd.DataFrame({"image_id": list("abcdef"), "patient_id": "p", "label": [0, 0, 1, 1, 0, 1],
                                "prob_abnormal": [0.9, 0.7, 0.1, 0.3, 0.2, 0.8], "pred": [1, 1, 0, 0, 0, 1]})
    rows = gallery_rows(predictions)
    assert rows.loc[rows["kind"] == "false positive", "image_id"].tolist() == ["a", "b"]
    assert rows.loc[rows["kind"] == "false negative", "image_id"].tolist() == ["c", "d"]
    assert set(rows.loc[rows["kind"].str.startswith("true"), "image_id"]) == {"e", "f"}
    right = gallery_rows(predictions.assign(pred=predictions["label"]))
    assert right["image_id"].notna().all() and set(right["kind"]) <= {"true positive", "true negative"}
