"""Real kidney frames: does pre-training help fine-tuning with few labels, on real pixels?

    python bench/real_kidney.py --data /work/data/hydro --work /tmp/real_kidney            # the full study
    python bench/real_kidney.py --data DIR --work /tmp/rk_smoke --draws 1 --seeds 1 --fractions 0.1 \
        --image-size 32 --set pretrain.epochs=1 --set finetune.epochs=2 --set evaluation.n_bootstrap=200

Data: the public repository ncnuaiialab/hydronephrosis-experimental-data (224 px grey kidney crops,
frames labelled hydronephrosis or normal, in ten folds). It has no licence file, so it is read at run time
from a copy fetched outside every repository (`--data`: its extracted tree, with `data/1` ... or `1` ...
below it, or its git directory, from which folds 1-8 are extracted into `--work`); its frames are never
copied into a repository. **Folds 9 and 10 are kept for a held-out bar and never read here**: asking for
them is refused.

The split, declared before any run: folds 1-6 are the training pool, fold 7 validation, fold 8 test. A
frame's series (exam and patient) is its file name without the trailing frame index. Exact duplicate
frames (same pixels; some acquisitions appear in two folds under other names) are dropped, the copy in
test kept first, then validation, then the pool; a frame whose copies carry both labels is dropped
altogether. Each label draw d permutes the pool's series; the first ones up to a fraction f of the pool's
frames are labelled (the draws are nested: 10% within 100%). Pre-training uses the pool's series outside
the smallest fraction, each series with a short French report written from its frames' labels
(hydronephrosis of a random side and grade if any frame is abnormal, else normal kidneys) in the
synthetic corpus's templated style, drawn anew per draw. Validation and test series are never
pre-trained on.

Everything runs through the package's own doors: `run_pipeline` with the stages of `usconvirt run` up to
pre-training (split from this bench's split file, clustering, sentences, pairs, tokenizer, ConVIRT and the
controls asked for), then the fine-tuning stage per protocol, fraction, fine-tuning seed and init, with the
validated config's fine-tuning settings (`--protocols f1_at_half auc_then_threshold` fine-tunes the same
pre-trained encoders under both checkpoint protocols, so before and after are paired; `--class-balances
none weights sampler` likewise fine-tunes them under each class-balance setting). `--pretrained-from
STUDY_WORK` takes a finished study's pre-trainings, read only, and fine-tunes into `--work`: refused
unless every stage there is up to date with this config and its reports and split are this bench's.
The config is configs/demo.yaml (`--config`) with `--set SECTION.KEY=VALUE` changes.

Printed: per cell (protocol, class balance, fraction, draw, seed, init) the test macro-F1 and ROC AUC with
95% series-bootstrap intervals; per protocol, class balance, fraction and init the mean ± sd over cells and
the validation macro-F1 (the selection score, what a setting may be chosen on), beside a pixel-PCA logistic
regression fitted on the same labelled frames; the paired differences of each init against random, SimCLR
and ConVIRT (mean, sd, cells won); and with several fine-tuning variants (protocol, class balance), each
init's later variant minus each earlier one. The cells go to WORK/cells.csv; a killed study resumes from its
finished runs, and refuses a finished run whose fine-tuning settings differ from those asked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from usconvirt.pipeline import Stage
    from usconvirt.pipeline_config import PipelineConfig
    from usconvirt.run_layout import RunLayout
    from usconvirt.training.config import FinetuneConfig

FOLD_PARTS = {1: "pool", 2: "pool", 3: "pool", 4: "pool", 5: "pool", 6: "pool", 7: "val", 8: "test"}
HELD_OUT_FOLDS = (9, 10)
PART_PRIORITY = ("test", "val", "pool")  # the copy of a duplicate frame that is kept: test's first
LABELS = ("abnormal", "normal")  # the fold's subfolders
# `..._103`, `..._Frame57`, `..._-1_Frame0`: the trailing frame index; what is left names the series.
FRAME_INDEX = re.compile(r"(_-\d+)?_(Frame)?\d+$")


def series_of(stem: str) -> str:
    """The series (exam and patient) of a frame's file name without its extension."""
    return FRAME_INDEX.sub("", stem)


def fold_dir(root: Path, fold: int) -> Path:
    for candidate in (root / "data" / str(fold), root / str(fold)):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{root}: no fold {fold} (expected {root}/data/{fold} or {root}/{fold})")


def read_folds(root: Path, folds: dict[int, str] = FOLD_PARTS) -> pd.DataFrame:
    """One row per frame of `folds` (fold -> part): fold, part, label, series, name, source, digest.

    The held-out folds are refused before anything is listed, so no code path reads them.
    """
    from PIL import Image

    refused = sorted(set(folds) & set(HELD_OUT_FOLDS))
    if refused:
        raise ValueError(f"folds {refused} are held out (scored elsewhere); this bench reads folds 1-8 only")
    rows = []
    for fold, part in sorted(folds.items()):
        base = fold_dir(root, fold)
        for label in LABELS:
            for path in sorted((base / label).glob("*.jpg")):
                if path.stem.endswith("_M"):  # the hydronephrosis mask beside its frame
                    continue
                with Image.open(path) as image:
                    pixels = np.asarray(image.convert("L"))
                digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
                rows.append({"fold": fold, "part": part, "label": label, "series": series_of(path.stem),
                             "name": path.stem, "source": str(path), "digest": digest})
    frames = pd.DataFrame(rows)
    parts = frames.groupby("series")["part"].nunique()
    if (parts > 1).any():
        raise ValueError(f"series {parts[parts > 1].index[0]!r} has frames in two parts")
    return frames


def drop_duplicates(frames: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Frames with exact duplicates removed (the test copy kept first) and the counts of what went."""
    conflicting = frames.groupby("digest")["label"].transform("nunique") > 1
    rank = frames["part"].map({p: i for i, p in enumerate(PART_PRIORITY)})
    ordered = frames[~conflicting].assign(rank=rank).sort_values(["rank", "fold", "name"], kind="stable")
    first_part = ordered.groupby("digest")["part"].transform("first")
    kept = ordered.drop_duplicates("digest").drop(columns="rank")
    dropped = ordered.loc[ordered.index.difference(kept.index)]
    across = int((dropped["part"] != first_part[dropped.index]).sum())
    counts = {"frames read": len(frames), "label conflicts dropped": int(conflicting.sum()),
              "duplicates dropped": len(dropped), "of which copies of another part's frame": across,
              "frames kept": len(kept)}
    return kept.sort_values(["fold", "label", "name"]).reset_index(drop=True), counts


def write_frames(frames: pd.DataFrame, out: Path) -> pd.DataFrame:
    """Each frame as a PNG under OUT/frames (outside every repository); the images table of the dataset."""
    from PIL import Image

    (out / "frames").mkdir(parents=True, exist_ok=True)
    image_ids = [f"f{fold}-{name}" for fold, name in zip(frames["fold"], frames["name"], strict=True)]
    for image_id, source in zip(image_ids, frames["source"], strict=True):
        target = out / "frames" / f"{image_id}.png"
        if not target.exists():
            with Image.open(source) as image:
                image.convert("L").save(target)
    return pd.DataFrame({"image_id": image_ids, "exam_id": frames["series"].to_numpy(),
                         "path": [f"frames/{i}.png" for i in image_ids], "label": frames["label"].to_numpy(),
                         "organ": "kidney"})


def series_reports(frames: pd.DataFrame, seed: int, style: str = "templated") -> pd.DataFrame:
    """exams table: one short French report per series, from its frames' labels, in a synthetic style."""
    from usconvirt.synth.exam import SIDES, ExamState, KidneyState
    from usconvirt.synth.reports import write_report

    rng = np.random.default_rng(seed)
    rows = []
    for series, labels in frames.groupby("series", sort=True)["label"]:
        kidneys = {side: KidneyState(side) for side in SIDES}
        if (labels == "abnormal").any():
            side = SIDES[int(rng.integers(len(SIDES)))]
            kidneys[side] = KidneyState(side, "hydronephrosis", grade=int(rng.integers(1, 4)))
        exam = ExamState(series, series, "", "", 0, kidneys)
        rows.append({"exam_id": series, "patient_id": series,
                     "report": write_report(rng, exam, {"kidney"}, 0.0, 0.0, report_style=style)})
    return pd.DataFrame(rows)


def labelled_series(frames: pd.DataFrame, fraction: float, draw: int) -> list[str]:
    """The pool's series labelled at `fraction` in draw `draw`: a prefix of the draw's permutation, up to
    that share of the pool's frames, so that the fractions of one draw are nested."""
    pool = frames[frames["part"] == "pool"].groupby("series").size().sort_index()
    order = pool.index[np.random.default_rng(draw).permutation(len(pool))]
    covered = pool[order].cumsum().to_numpy()
    return list(order[: int(np.searchsorted(covered, fraction * covered[-1] - 1e-9)) + 1])


def split_table(frames: pd.DataFrame, labelled: list[str]) -> pd.DataFrame:
    """The bench's split as a team's split file (patient_id, part): labelled pool series train, the rest
    of the pool pretrain, folds 7 and 8 val and test."""
    parts = frames.groupby("series")["part"].first()
    parts = parts.where(parts != "pool", "pretrain")
    parts[parts.index.isin(labelled)] = "train"
    return parts.rename_axis("patient_id").rename("part").reset_index()


def holds(path: Path, table: pd.DataFrame) -> bool:
    """Whether the CSV file `path` holds exactly `table`'s text."""
    return path.exists() and path.read_text() == table.to_csv(index=False)


def write_csv_once(table: pd.DataFrame, path: Path) -> Path:
    """`table` as CSV at `path`, left untouched when it already holds the same text: the pipeline fingerprints
    its inputs by size and time, so rewriting an identical file would redo every finished stage on resume."""
    if not holds(path, table):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table.to_csv(index=False))
    return path


def outside_repositories(path: Path) -> Path:
    """`path`, refused when it lies inside a git work tree or directory: the frames must not enter one."""
    for folder in (path.resolve(), *path.resolve().parents):
        if (folder / ".git").exists() or (folder / "HEAD").is_file() and (folder / "objects").is_dir():
            raise ValueError(f"{path} is inside the repository {folder}: the frames have no licence to "
                             "be copied there; give a --work outside every repository")
    return path


def build_dataset(data: Path, work: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Frames of folds 1-8 deduplicated, written once under WORK; returns frames, images and counts."""
    frames, counts = drop_duplicates(read_folds(data))
    images = write_frames(frames, work)
    return frames, images, counts


def draw_dataset(work: Path, draw: int, images: pd.DataFrame, exams: pd.DataFrame) -> Path:
    """WORK/draw{d}/dataset: the draw's reports and hard links to the frames (a dataset holds its files)."""
    root = work / f"draw{draw}" / "dataset"
    (root / "frames").mkdir(parents=True, exist_ok=True)
    for path in images["path"]:
        if not (root / path).exists():
            os.link(work / path, root / path)
    write_csv_once(images, root / "images.csv")
    write_csv_once(exams, root / "exams.csv")
    return root


def extracted(data: Path, work: Path) -> Path:
    """`data` itself, or for a git directory its folds 1-8 extracted into WORK/source (9 and 10 never)."""
    if not (data / "HEAD").is_file():
        return data
    target = work / "source"
    if not (target / "data" / "8").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        paths = [f"data/{fold}/" for fold in sorted(FOLD_PARTS)]
        archive = subprocess.run(["git", f"--git-dir={data}", "archive", "HEAD", *paths], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def test_metrics(labels: np.ndarray, preds: np.ndarray, scores: np.ndarray, series: np.ndarray,
                 n_bootstrap: int) -> dict[str, float]:
    """Macro-F1 and ROC AUC with 95% intervals from series resamples (frames of a series move together)."""
    from usconvirt.evaluation.metrics import bootstrap_metrics, confidence_interval, detection_metrics

    point = detection_metrics(labels, preds, scores)
    samples = bootstrap_metrics(labels, preds, scores, series, n_bootstrap=n_bootstrap, seed=0)
    out = {}
    for key, name in (("macro_f1", "f1"), ("roc_auc", "auc")):
        low, high = confidence_interval(samples[key])
        out |= {name: float(np.ravel(point[key])[0]), f"{name}_low": low, f"{name}_high": high}
    return out


def pixel_baseline(dataset, split: pd.DataFrame, image_size: int, n_bootstrap: int) -> dict[str, float]:
    """Pixel PCA + logistic regression on the train part's frames, scored on test like the inits."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from usconvirt.data.frames import load_frames
    from usconvirt.training.finetune import labeled_frames

    frames = labeled_frames(dataset, split)
    train, test = frames[frames["part"] == "train"], frames[frames["part"] == "test"]
    x = {name: np.asarray(load_frames(dataset, image_size, image_ids=part["image_id"].tolist())[0],
                          dtype=np.float32).reshape(len(part), -1)
         for name, part in (("train", train), ("test", test))}
    model = make_pipeline(StandardScaler(), PCA(n_components=min(50, len(train) - 1), random_state=0),
                          LogisticRegression(max_iter=2000))
    model.fit(x["train"], train["target"])
    scores = model.predict_proba(x["test"])[:, 1]
    return test_metrics(test["target"].to_numpy(), (scores >= 0.5).astype(int), scores,
                        test["patient_id"].to_numpy(), n_bootstrap)


def finetune_split(split: pd.DataFrame, labelled: list[str]) -> pd.DataFrame:
    """The run's split with the pool's exams of the labelled series moved to train."""
    out = split.copy()
    out.loc[out["exam_id"].isin(labelled) & (out["part"] == "pretrain"), "part"] = "train"
    return out


def finished(run: Path, tuned: FinetuneConfig) -> bool:
    """Whether the fine-tuning in `run` is done with the settings `tuned` (its init aside: the directory
    names it); a run done with other settings is refused, never silently taken for this one."""
    import yaml

    from usconvirt.config import to_dict

    saved = run / "config.yaml"  # written after predictions.csv: without it the run did not finish
    if not (run / "predictions.csv").exists() or not saved.exists():
        return False
    done, asked = yaml.safe_load(saved.read_text()), to_dict(tuned)
    changed = sorted(k for k in asked.keys() | done.keys() if k != "init" and done.get(k) != asked.get(k))
    if changed:
        raise ValueError(f"{saved}: a finished fine-tuning with other settings ({', '.join(changed)}; e.g. "
                         f"{changed[0]} {done.get(changed[0])!r}, asked {asked.get(changed[0])!r}); "
                         "give another --work")
    return True


def pretrained(config: dict, stages: list[Stage], tables: dict[Path, pd.DataFrame],
               ) -> tuple[PipelineConfig, RunLayout]:
    """The validated config and layout of a study's finished draw, read only: every stage up to pre-training
    up to date with `config`, and the dataset and split files holding `tables` (what this bench would
    write), else refused; so another study fine-tunes on the very same encoders."""
    from usconvirt.pipeline import load_manifest, stage_key, up_to_date
    from usconvirt.pipeline_config import validate_pipeline_config
    from usconvirt.run_layout import RunLayout

    settings = validate_pipeline_config(config, source="real_kidney")
    layout = RunLayout(Path(settings.out), dataset=Path(settings.dataset))
    done = load_manifest(layout).get("stages", {})
    stale = [s.name for s in stages if s.enabled(settings, layout) and not up_to_date(
        settings, layout, s, stage_key(settings, layout, s), done.get(s.name, {}))]
    stale += [str(path) for path, table in tables.items() if not holds(path, table)]
    if stale:
        raise ValueError(f"--pretrained-from {layout.out}: not what this study would pre-train "
                         f"({', '.join(stale)} differ or are missing); run the study there first")
    return settings, layout


def run_draw(config: dict, work: Path, draw: int, frames: pd.DataFrame, images: pd.DataFrame,
             args: argparse.Namespace) -> list[dict]:
    """Pre-train once for the draw (the pipeline's stages; or take a finished study's, `--pretrained-from`),
    then fine-tune every init, seed and fraction."""
    from usconvirt.data import load_dataset
    from usconvirt.data.split import read_split
    from usconvirt.evaluation.evaluate import read_predictions
    from usconvirt.io import read_json
    from usconvirt.pipeline import run_pipeline
    from usconvirt.run_layout import METRICS_JSON
    from usconvirt.stages import STAGES, finetune_runs, machine_decisions, run_finetune

    run_dir = work / f"draw{draw}"
    source = (args.pretrained_from or work) / f"draw{draw}"
    exams = series_reports(frames, seed=draw, style=args.report_style)
    smallest = split_table(frames, labelled_series(frames, min(args.fractions), draw))
    config = {**config, "dataset": str(source / "dataset"), "out": str(source),
              "split": {"file": str(source / "bench_split.csv")},
              "pretrain": {**(config.get("pretrain") or {}), "seed": draw}}
    stages = STAGES[: [s.name for s in STAGES].index("pretrain") + 1]
    if args.pretrained_from:
        settings, layout = pretrained(config, stages, {source / "dataset" / "images.csv": images,
                                                       source / "dataset" / "exams.csv": exams,
                                                       source / "bench_split.csv": smallest})
    else:
        draw_dataset(work, draw, images, exams)
        write_csv_once(smallest, source / "bench_split.csv")
        settings, layout = run_pipeline(config, stages, decide=machine_decisions, quiet=True)
    dataset, split = load_dataset(Path(settings.dataset)), read_split(layout.split)
    inits = finetune_runs(settings, layout)
    cells = []
    variants = [(p, b) for p in args.protocols or [settings.finetune.protocol]
                for b in args.class_balances or [settings.finetune.class_balance]]
    for fraction in args.fractions:
        split_f = finetune_split(split, labelled_series(frames, fraction, draw))
        split_path = run_dir / "finetune" / f"{fraction:g}" / "split.csv"
        write_csv_once(split_f, split_path)
        n_train = int(images["exam_id"].isin(split_f.loc[split_f["part"] == "train", "exam_id"]).sum())
        base = {"fraction": fraction, "draw": draw, "train_frames": n_train}
        cells.append({**base, "protocol": "-", "class_balance": "-", "seed": -1, "init": "pixel PCA + LR",
                      **pixel_baseline(dataset, split_f, args.image_size, args.n_bootstrap)})
        print(_cell_line(cells[-1]), flush=True)
        for (protocol, balance), seed in ((v, s) for v in variants for s in range(args.seeds)):
            # the fine-tuning stage itself, on this fraction's split, one directory per variant and seed
            cell = replace(layout, split=split_path, finetune=run_dir / "finetune" / protocol / balance
                           / f"{fraction:g}" / f"seed{seed}")
            tuned = replace(settings.finetune, seed=seed, protocol=protocol, class_balance=balance)
            todo = {n: i for n, i in inits.items() if not finished(cell.finetuning(n), tuned)}
            if todo:
                run_finetune(replace(settings, finetune=tuned), cell, runs=todo, resume=False)
            for name in inits:
                p = read_predictions(cell.finetuning(name))
                val = read_json(cell.finetuning(name) / METRICS_JSON)["val"]
                cells.append({**base, "protocol": protocol, "class_balance": balance, "seed": seed,
                              "init": name, "val_f1": val["macro_f1"], **test_metrics(
                    p["label"].to_numpy(), p["pred"].to_numpy(), p["prob_abnormal"].to_numpy(),
                    p["patient_id"].to_numpy(),
                    args.n_bootstrap)})
                print(_cell_line(cells[-1]), flush=True)
    return cells


def _cell_line(cell: dict) -> str:
    return (f"{cell['protocol']} {cell['class_balance']} {cell['fraction']:g} draw {cell['draw']} "
            f"seed {cell['seed']} {cell['init']}: macro-F1 "
            f"{cell['f1']:.3f} ({cell['f1_low']:.3f}-{cell['f1_high']:.3f}), AUC {cell['auc']:.3f} "
            f"({cell['auc_low']:.3f}-{cell['auc_high']:.3f})")


def _mean_sd(values: pd.Series) -> str:
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"


def summary(cells: pd.DataFrame) -> pd.DataFrame:
    """Per protocol, class balance, fraction and init: cells, mean ± sd of test macro-F1 and AUC and of the
    validation macro-F1."""
    keys = ["protocol", "class_balance", "fraction", "init"]
    rows = [{**dict(zip(keys, key, strict=True)), "cells": len(group), "macro-F1": _mean_sd(group["f1"]),
             "AUC": _mean_sd(group["auc"]),
             "val macro-F1": _mean_sd(group["val_f1"]) if group["val_f1"].notna().all() else "-"}
            for key, group in cells.groupby(keys, sort=False)]
    return pd.DataFrame(rows)


def _differences(label: str, diff: pd.Series) -> str:
    sd = f"{diff.std():.3f}" if len(diff) > 1 else "n/a"
    return f"{label} {diff.mean():+.3f} (sd {sd}; won {int((diff > 0).sum())} of {len(diff)} cells)"


def paired(cells: pd.DataFrame, controls: tuple[str, ...] = ("random", "simclr", "convirt")) -> list[str]:
    """Each init minus each control, paired by (variant, fraction, draw, seed), a variant being a protocol
    and class balance: mean, sd and cells won; with several variants, also each init's later variant
    minus each earlier one."""
    lines = []
    runs = cells[cells["seed"] >= 0].assign(variant=lambda t: t["protocol"] + " " + t["class_balance"])
    variants = list(dict.fromkeys(runs["variant"]))
    for metric in ("f1", "auc"):
        wide = runs.pivot_table(index=["variant", "fraction", "draw", "seed"], columns="init", values=metric)
        for (variant, fraction), table in wide.groupby(level=["variant", "fraction"], sort=False):
            for control in (c for c in controls if c in table.columns):
                for init in (i for i in table.columns if i not in controls[: controls.index(control) + 1]):
                    lines.append(_differences(f"{variant} {fraction:g} {metric}: {init} minus {control}",
                                              (table[init] - table[control]).dropna()))
        by_variant = runs.pivot_table(index=["fraction", "draw", "seed", "init"], columns="variant",
                                      values=metric)
        for (fraction, init), table in by_variant.groupby(level=["fraction", "init"]):
            for i, first in enumerate(variants):
                for later in variants[i + 1:]:
                    label = f"{fraction:g} {metric}: {init}, {later} minus {first}"
                    lines.append(_differences(label, (table[later] - table[first]).dropna()))
    return lines


def main() -> None:
    import yaml

    from seed_study import with_setting
    from usconvirt.training.config import CLASS_BALANCES, PROTOCOLS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="the fetched repository: its extracted tree or its git directory")
    parser.add_argument("--work", type=Path, required=True,
                        help="working directory, outside every repository")
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--draws", type=int, default=3, help="label draws (and report wordings)")
    parser.add_argument("--seeds", type=int, default=3, help="fine-tuning seeds per draw")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--inits", default="random,simclr,shuffled,convirt,convirt-equiv")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--report-style", default="templated")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--protocols", nargs="+", default=None, choices=PROTOCOLS,
                        help="fine-tuning checkpoint protocols, each on the same pre-trained encoders "
                             "(default: the config's finetune.protocol)")
    parser.add_argument("--class-balances", nargs="+", default=None, choices=CLASS_BALANCES,
                        help="fine-tuning class-balance settings, each on the same pre-trained encoders "
                             "(default: the config's finetune.class_balance)")
    parser.add_argument("--pretrained-from", type=Path, default=None, metavar="STUDY_WORK",
                        help="fine-tune the encoders of a finished study's --work (read only, refused "
                             "unless up to date with this config) instead of pre-training in --work")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = parser.parse_args()

    config = yaml.safe_load(args.config.read_text())
    for assignment in args.set:
        config = with_setting(config, assignment)
    pretrain = config.get("pretrain") or {}
    config |= {"finetune_inits": args.inits.split(","), "label_efficiency": {"enabled": False},
               "pretrain": {**pretrain, "image_size": args.image_size}}
    outside_repositories(args.work).mkdir(parents=True, exist_ok=True)
    frames, images, counts = build_dataset(extracted(args.data, args.work), args.work)
    print("; ".join(f"{k} {v}" for k, v in counts.items()))
    by_part = frames.groupby("part").agg(series=("series", "nunique"), frames=("name", "size"),
                                         abnormal=("label", lambda s: int((s == "abnormal").sum())))
    print(by_part.to_string())
    cells = pd.DataFrame([cell for draw in range(args.draws)
                          for cell in run_draw(config, args.work, draw, frames, images, args)])
    cells.to_csv(args.work / "cells.csv", index=False)
    print(summary(cells).to_string(index=False))
    print("\n".join(paired(cells)))


if __name__ == "__main__":
    main()
