"""Choosing the clustering on labelled frames: cross-validated over exams, the plain baseline on ties."""

import numpy as np
import pytest

from usconvirt.clustering.run import floor_problems
from usconvirt.clustering.selection import (
    BASELINE,
    NOT_KIDNEY,
    choose,
    cross_validated_score,
    parse_candidates,
    selection_targets,
)

ORGANS = ["kidney", "liver", "bladder"]


def organ_frames(n_exams: int = 12, per_exam: int = 6) -> tuple[list[str], list[str], np.ndarray]:
    organs = [ORGANS[i % 3] for i in range(n_exams * per_exam)]
    exams = [f"e{i // per_exam}" for i in range(n_exams * per_exam)]
    clusters = np.array([2 * ORGANS.index(o) + i % 2 for i, o in enumerate(organs)])  # two clusters an organ
    return organs, exams, clusters


def test_clusters_that_follow_the_organs_score_one_and_scrambled_ones_less():
    organs, exams, clusters = organ_frames()
    perfect = cross_validated_score(clusters, organs, exams, 6, None, "kidney")
    assert perfect["score"] == 1.0 and perfect["exams"] == 12 and perfect["frames"] == 72
    scrambled = np.random.default_rng(0).permutation(clusters)
    assert cross_validated_score(scrambled, organs, exams, 6, None, "kidney")["score"] < 0.7


def test_frames_without_a_target_are_not_scored_and_one_exam_cannot_score():
    organs, exams, clusters = organ_frames()
    some = [o if e in ("e0", "e1", "e2") else "" for o, e in zip(organs, exams, strict=True)]
    assert cross_validated_score(clusters, some, exams, 6, None, "kidney")["frames"] == 18
    only_one = [o if e == "e0" else "" for o, e in zip(organs, exams, strict=True)]
    assert cross_validated_score(clusters, only_one, exams, 6, None, "kidney") is None


def test_ties_go_to_the_first_candidate_and_unscored_ones_never_win():
    assert choose({"pca32:12": {"score": 0.9}, "texture:48": {"score": 0.9}, "robust:24": None}) == "pca32:12"
    assert choose({"pca32:12": {"score": 0.8}, "texture:48": {"score": 0.9}}) == "texture:48"
    assert choose({"pca32:12": None}) is None
    # the baseline keeps its place unless beaten by more than the margin
    close = {"pca32:12": {"score": 0.80}, "texture:48": {"score": 0.81}}
    assert choose(close, "pca32:12", 0.02) == "pca32:12" and choose(close, "pca32:12", 0.0) == "texture:48"


def test_the_baseline_is_always_the_first_candidate_and_bad_specs_are_refused():
    assert [c.name for c in parse_candidates(["texture:48", "pca32:12", "robust:24"])] == [
        BASELINE.name, "texture:48", "robust:24"]
    with pytest.raises(ValueError, match="FEATURES:K"):
        parse_candidates(["hog:12"])


def test_kidney_and_absent_labels_are_targets_only_together():
    targets, source = selection_targets(["", "", ""], ["normal", "absent", ""], "kidney")
    assert targets == ["kidney", NOT_KIDNEY, ""] and source == "kidney / absent labels"
    assert selection_targets(["", ""], ["normal", "abnormal"], "kidney")[1] == "none"
    assert selection_targets(["liver", ""], ["absent", ""], "kidney") == (["liver", ""], "organ labels")


def test_a_choice_below_the_baseline_on_held_out_frames_is_a_warning():
    table = {"pca32:12": {"score": 0.9}, "texture:48": {"score": 0.85}}
    assert "below the plain pixel baseline" in floor_problems(table, "texture:48", "pca32:12")[0]
    assert floor_problems(table, "pca32:12", "pca32:12") == []
    assert floor_problems({**table, "texture:48": {"score": 0.95}}, "texture:48", "pca32:12") == []
