"""Probe of frozen image encoders for the simulated scanner: does pre-training carry the exam's scanner?

    python docs/experiments/scanner_probe.py /tmp/fam_study /tmp/single_study

Each STUDY is a bench/seed_study.py output (STUDY/prep, STUDY/pretrain{P}/pretrain[_shuffled]). Every
normal/abnormal kidney frame of the val and test parts is encoded by each pre-trained encoder and by a
random-init encoder of the same arch (seeded P), batch-norm statistics recomputed on those frames as the
`represent` stage does. Targets per frame: its label (abnormal), and on a `families` corpus its exam's
scanner family and gain, recomputed from the exam id by the renderer's own draw. Logistic regression
(ROC AUC) and ridge (R^2, its penalty chosen inside each training fold) on standardised features, 5-fold
cross-validated grouped by patient; the table gives the mean (sd) over the pre-training seeds, and each
class target's share of the feature variance (between-class over total). A measurement: nothing is tuned.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from usconvirt.config import load_yaml
from usconvirt.data.dataset import load_dataset
from usconvirt.data.frames import load_frames
from usconvirt.data.split import read_split
from usconvirt.evaluation.representation import (
    RepresentationConfig,
    encode_frames,
    recompute_batch_norm,
    resolve_encoder,
)
from usconvirt.synth.render import exam_scanner
from usconvirt.training.finetune import labeled_frames

INITS = {"random": None, "shuffled": "pretrain_shuffled", "convirt": "pretrain"}


def probe_scores(x: np.ndarray, targets: dict[str, np.ndarray], groups: np.ndarray) -> dict[str, float]:
    folds = GroupKFold(n_splits=5)
    scores = {}
    for name, y in targets.items():
        if name == "gain":
            model, scoring = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13))), "r2"
        else:
            model, scoring = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)), "roc_auc"
        scores[name] = float(cross_val_score(model, x, y, groups=groups, cv=folds, scoring=scoring).mean())
        if name != "gain":
            scores[f"{name}_share"] = variance_share(x, y)
    return scores


def variance_share(x: np.ndarray, y: np.ndarray) -> float:
    """Share of the standardised features' variance between the classes of y: how much of the
    representation a target takes up, where a probe's AUC only says whether it can be read at all."""
    z = StandardScaler().fit_transform(x)
    between = sum((y == c).sum() * (z[y == c].mean(axis=0) ** 2).sum() for c in np.unique(y))
    return float(between / (z ** 2).sum())


def study_rows(study: Path) -> list[dict]:
    prep = study / "prep"
    scanners = load_yaml(prep / "dataset" / "synth_config.yaml").get("scanners", "single")
    data = load_dataset(prep / "dataset", check_files=False)
    frames_table = labeled_frames(data, read_split(prep / "split.csv"))
    frames_table = frames_table[frames_table["part"].isin(["val", "test"])].reset_index(drop=True)
    targets = {"abnormal": frames_table["target"].to_numpy()}
    if scanners != "single":
        drawn = [exam_scanner(exam, scanners) for exam in frames_table["exam_id"]]
        targets["family"] = np.array([index for index, _ in drawn])
        targets["gain"] = np.array([settings["gain_db"] for _, settings in drawn])
    groups = frames_table["patient_id"].to_numpy()
    rows = []
    for run in sorted(study.glob("pretrain[0-9]*")):
        seed = int(run.name.removeprefix("pretrain"))
        model = load_yaml(run / "pretrain" / "config.yaml")["model"]
        config = RepresentationConfig(image_size=int(model["image_size"]), arch=model["image"]["arch"],
                                      seed=seed)
        frames, _ = load_frames(data, config.image_size, image_ids=frames_table["image_id"].tolist())
        for init, directory in INITS.items():
            if directory and not (run / directory / "image_encoder").is_dir():
                continue
            encoder = resolve_encoder("random" if directory is None else f"convirt:{run / directory}", config)
            recompute_batch_norm(encoder, frames, config.batch_size)
            x = encode_frames(encoder, frames, config.batch_size)
            rows.append({"corpus": scanners, "init": init, "seed": seed,
                         **probe_scores(x, targets, groups), "frames": len(x)})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    args = parser.parse_args()
    table = pd.DataFrame([row for study in args.studies for row in study_rows(study)])
    metrics = [c for c in ("abnormal", "family", "gain", "abnormal_share", "family_share") if c in table]
    summary = table.groupby(["corpus", "init"], sort=False)[metrics].agg(["mean", "std"])
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
