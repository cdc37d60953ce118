"""Where a seed study's classifiers differ: the share of frames called abnormal, per kind of frame.

    python bench/per_finding.py STUDY_DIR [--parts val,test] [--inits random,shuffled,convirt]

STUDY_DIR is a `bench/seed_study.py --out` directory on a synthetic corpus: its `prep/dataset/truth.parquet`
says, for scoring only, what each labelled frame shows. Frames are grouped by
- abnormal frames: the finding of the frame's own kidney (cyst, stone, ...) and whether the frame shows it
  (a focal lesion shows on some frames of an abnormal kidney only; all of them are labelled abnormal);
- normal frames: whether the exam's *other* kidney is abnormal. The paper's pairing gives such a frame its
  exam's kidney sentences, which describe the other side's finding, so pre-training on the reports could
  push it towards abnormal; or the exam is normal on both sides.
For each group and initialisation: the share of frames predicted abnormal (sensitivity for abnormal
groups, false-positive rate for normal ones), averaged over the study's cells, and each pre-trained init
minus random and minus shuffled text, paired by cell. Diagnostic only: nothing is chosen from it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def frame_groups(truth: pd.DataFrame) -> pd.DataFrame:
    """image_id -> group, for kidney frames labelled normal or abnormal."""
    kidney = truth[truth["label"].isin(["normal", "abnormal"])].copy()
    right = kidney["side"] == "right"
    kidney["own"] = kidney["right_kidney"].where(right, kidney["left_kidney"])
    kidney["other"] = kidney["left_kidney"].where(right, kidney["right_kidney"])
    abnormal = kidney["label"] == "abnormal"
    shown = kidney["finding_visible"].astype(bool).map({True: "shown", False: "not shown"})
    kidney["group"] = ("abnormal: " + kidney["own"] + ", " + shown).where(abnormal, None)
    other_abnormal = ~kidney["other"].isin(["normal", "absent"])
    kidney.loc[~abnormal, "group"] = other_abnormal[~abnormal].map(
        {True: "normal: other kidney abnormal", False: "normal: other kidney normal or absent"})
    return kidney[["image_id", "group"]]


def study_predictions(study: Path, parts: list[str]) -> pd.DataFrame:
    """Every fine-tuning run's predictions on the chosen parts: init, cell, image_id, pred."""
    names = {"test": "predictions.csv", "val": "val_predictions.csv"}
    rows = []
    for run in sorted(study.glob("pretrain*/finetune/*-f*")):
        init, _, f = run.name.rpartition("-f")
        p = int(run.parent.parent.name.removeprefix("pretrain"))
        for part in parts:
            file = run / names[part]
            if file.exists():
                table = pd.read_csv(file, usecols=["image_id", "pred"])
                rows.append(table.assign(init=init, pretrain_seed=p, finetune_seed=int(f), part=part))
    if not rows:
        raise SystemExit(f"{study}: no fine-tuning predictions under pretrain*/finetune/")
    return pd.concat(rows, ignore_index=True)


def per_group_table(predictions: pd.DataFrame, groups: pd.DataFrame, inits: list[str]) -> pd.DataFrame:
    merged = predictions.merge(groups, on="image_id", how="inner")
    share = merged.groupby(["group", "init", "pretrain_seed", "finetune_seed"])["pred"].mean().reset_index()
    wide = share.pivot_table(index=["group", "pretrain_seed", "finetune_seed"], columns="init", values="pred")
    frames = merged[merged["init"] == merged["init"].iloc[0]].drop_duplicates(["image_id", "part"])
    counts = frames.groupby("group").size()
    rows = []
    for group, cells in wide.groupby(level="group"):
        row = {"group": group, "frames": int(counts.get(group, 0))}
        for init in inits:
            if init in cells:
                row[init] = cells[init].mean()
        for init in (i for i in inits if i not in ("random", "shuffled") and i in cells):
            for other in (o for o in ("random", "shuffled") if o in cells):
                diff = (cells[init] - cells[other]).dropna()
                row[f"{init} - {other}"] = f"{diff.mean():+.3f} ({int((diff > 0).sum())}/{len(diff)})"
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--parts", default="val,test")
    parser.add_argument("--inits", default="random,shuffled,simclr,convirt")
    args = parser.parse_args()

    truth_file = args.study / "prep" / "dataset" / "truth.parquet"
    if not truth_file.exists():
        raise SystemExit(f"{truth_file}: not found (a synthetic corpus's truth table is needed)")
    truth = pd.read_parquet(truth_file)
    predictions = study_predictions(args.study, args.parts.split(","))
    inits = [i for i in args.inits.split(",") if i in set(predictions["init"])]
    table = per_group_table(predictions, frame_groups(truth), inits)
    print(f"share of frames predicted abnormal, parts {args.parts}, mean over "
          f"{predictions.groupby(['pretrain_seed', 'finetune_seed']).ngroups} cells "
          f"(paired differences: mean, cells won)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
