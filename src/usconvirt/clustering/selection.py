"""Choosing the clustering on the user's own labelled frames.

No feature space wins on every scanner: the texture features chosen on synthetic frames lost to plain
PCA of the pixels on real organ crops (docs/clustering.md). So the stage fits a few candidates (feature
space x K) on the frames it clusters and keeps the one whose clusters best name the labelled frames,
cross-validated over exams: the cluster -> organ vote is taken on some exams and scored on the others,
so no candidate is scored on the frames that named its clusters. The plain pixel baseline (`pca32`) is
always a candidate, and another wins only by a margin over it: a choice within the noise of the
cross-validation keeps the floor. With no labels to score on, the baseline is used as it is.

Targets: organ labels where frames have them (`images.organ`), else kidney (normal/abnormal) against
frames known to show no kidney (`absent`). The score is the mean of the weighted F1 and the focus
organ's F1 over the out-of-fold frames, averaged over `repeats` shuffles of the exams into folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score

from usconvirt.clustering.config import candidate_spec
from usconvirt.clustering.mapping import UNMAPPED, fill_unmapped, majority_mapping

NOT_KIDNEY = "not kidney"  # the target of `absent` frames when no organ label exists


@dataclass(frozen=True)
class Candidate:
    """One clustering to try: a feature space of baselines.feature_blocks and K."""

    features: str
    clusters: int

    @property
    def name(self) -> str:
        return f"{self.features}:{self.clusters}"


BASELINE = Candidate("pca32", 12)  # plain PCA (32 px, 50 components) + k-means K 12: the floor of every run


def parse_candidates(specs: list[str] | tuple[str, ...]) -> list[Candidate]:
    """'features:K' strings -> candidates, the baseline first whether listed or not, duplicates dropped."""
    out: dict[str, Candidate] = {}
    for spec in (BASELINE.name, *specs):
        features, k = candidate_spec(spec)
        out.setdefault(f"{features}:{k}", Candidate(features, k))
    return list(out.values())


def selection_targets(organs: list[str], labels: list[str], focus: str) -> tuple[list[str], str]:
    """Per frame the class a clustering should recover ('' = not used), and which labels gave it."""
    if any(organs):
        return list(organs), "organ labels"
    if focus == "kidney" and "absent" in labels and any(lab in ("normal", "abnormal") for lab in labels):
        return ["kidney" if lab in ("normal", "abnormal") else NOT_KIDNEY if lab == "absent" else ""
                for lab in labels], "kidney / absent labels"
    return [""] * len(organs), "none"


def label_scores(true: list[str] | np.ndarray, pred: list[str] | np.ndarray, focus: str) -> dict:
    """Weighted F1 over the true classes, the focus organ's F1, and their mean (the selection score)."""
    true, pred = np.asarray(true, dtype=object), np.asarray(pred, dtype=object)
    classes = sorted(set(true))
    weighted = float(f1_score(true, pred, labels=classes, average="weighted", zero_division=0))
    focus_f1 = (float(f1_score(true == focus, pred == focus, zero_division=0)) if focus in classes
                else weighted)
    return {"score": round((weighted + focus_f1) / 2, 4), "weighted_f1": round(weighted, 4),
            f"{focus}_f1": round(focus_f1, 4)}


def cross_validated_score(clusters: np.ndarray, targets: list[str], exams: list[str], k: int,
                          centroids: np.ndarray | None, focus: str, folds: int = 5, repeats: int = 3,
                          seed: int = 0) -> dict | None:
    """label_scores of out-of-fold predictions: exams dealt into folds, each fold's frames named by the
    majority vote of the other folds (clusters no vote names take the nearest named centroid's organ);
    the mean over `repeats` dealings. None with fewer than two labelled exams."""
    used = np.array([bool(t) for t in targets])
    clusters, truth = np.asarray(clusters)[used], np.asarray(targets, dtype=object)[used]
    exam_of = np.asarray(exams, dtype=object)[used]
    unique = np.array(sorted(set(exam_of)), dtype=object)
    n_folds = min(folds, len(unique))
    if n_folds < 2:
        return None
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(repeats):
        fold_of = {e: i % n_folds for i, e in enumerate(rng.permutation(unique))}
        fold = np.array([fold_of[e] for e in exam_of])
        pred = np.full(len(truth), UNMAPPED, dtype=object)
        for f in range(n_folds):
            train = fold != f
            mapping = majority_mapping(clusters[train], list(truth[train]), k)
            if centroids is not None:
                mapping = fill_unmapped(mapping, centroids)
            pred[~train] = [mapping.get(int(c), UNMAPPED) for c in clusters[~train]]
        runs.append(label_scores(truth, pred, focus))
    mean = {key: round(float(np.mean([r[key] for r in runs])), 4) for key in runs[0]}
    return {**mean, "frames": int(used.sum()), "exams": len(unique)}


def choose(scores: dict[str, dict | None], baseline: str | None = None, margin: float = 0.0) -> str | None:
    """The candidate of highest score, the first listed on ties; another than `baseline` wins only by
    more than `margin` over the baseline's score. None if no candidate was scored."""
    scored = [(s["score"], -i, name) for i, (name, s) in enumerate(scores.items()) if s]
    if not scored:
        return None
    best = max(scored)[2]
    floor = scores.get(baseline) if baseline else None
    if floor and best != baseline and scores[best]["score"] <= floor["score"] + margin:
        return baseline
    return best
