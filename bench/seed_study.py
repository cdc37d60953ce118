"""Seed study: N pre-training x M fine-tuning seeds per initialisation, on one corpus, one protocol.

    python bench/seed_study.py configs/demo.yaml --out /tmp/study --synth-seed 7 --score val   # develop
    python bench/seed_study.py configs/demo.yaml --out /tmp/study --synth-seed 1234 --score test  # once
    python bench/seed_study.py configs/demo.yaml --out /tmp/v --synth-seed 7 --pretrain-seeds 1 \
        --inits random,convirt,shuffled --score dev --set pretrain.sample_sentence=false  # one variant

The corpus, split, clustering, sentences, pairs and tokenizer are made once by the pipeline's own stages
(`OUT/prep`, with the paper's pairing: `match_laterality` off). Then, for each pre-training seed p, ConVIRT,
the shuffled-text control and the image-only (SimCLR) control are pre-trained with seed p, and for each
fine-tuning seed f every initialisation (random included) is fine-tuned with seed 100 p + f: the cells
(p, f) are paired, each init seeing the same data order. The table prints, per initialisation, the mean
± sd of the chosen part's macro-F1 over the N x M cells, its mean ROC AUC (threshold-free), and the share
of cells it beats random and the shuffled-text control (ties count half); lines below it give each
pre-trained init minus random and minus shuffled text, and ConVIRT minus SimCLR and minus report labels,
paired by cell (mean, sd, cells won). On a
synthetic corpus a last line gives the part's ceiling: the macro-F1 of an oracle that calls a frame
abnormal exactly when it shows its finding (a focal lesion shows on some frames of an abnormal kidney
only, and every frame of it is labelled abnormal), read from the truth table for scoring only. Choose
settings with `--score val` on a development corpus seed; score `--score test` once, on a corpus seed
kept aside.
`--score dev` is the mean of the validation and test macro-F1, for a development corpus seed only (its
validation part alone is a handful of patients).
`--set section.key=value` (repeatable, value read as YAML) changes one setting of the config, so a
variant is one command. A killed study resumes: finished runs are kept.
`--inits` may add `report_labels` (the image encoder trained on the reports' weak labels with GCE, same
frames and steps), `convirt-equiv` (ConVIRT with equivalent texts as shared positives,
`pretrain.equivalent_texts`, identical texts unless the config names another) and `imagenet` (where its
weights are cached).
`--pretrain-epochs` overrides the config's pre-training epochs (a smaller study on a busy machine).
`--only-pretrain-seed P` runs one pre-training seed's cells, so that seeds can run in parallel processes
(they wait for each other's `OUT/prep`); a last run without it gathers them and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import replace
from pathlib import Path

import pandas as pd

from usconvirt.pipeline_config import PipelineConfig
from usconvirt.run_layout import RunLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The pre-trained initialisations: ConVIRT, its controls and its variant, each pre-trained by the
# pipeline's stage.
PRETRAINED = ("convirt", "shuffled", "simclr", "report_labels", "convirt-equiv")


def prepare(config: dict, out: Path, wait_s: float = 0.0) -> RunLayout:
    """Run the pipeline up to the tokenizer into OUT/prep; returns its layout. With `wait_s`, a prep
    held by another process of the same study (`--only-pretrain-seed`) is waited for, not an error."""
    import time

    from usconvirt.errors import InputError
    from usconvirt.pipeline import run_pipeline
    from usconvirt.stages import STAGES, machine_decisions

    last = [s.name for s in STAGES].index("tokenizer")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return run_pipeline(config, STAGES[:last + 1], out=out / "prep", decide=machine_decisions)[1]
        except InputError:
            if not RunLayout(out / "prep").lock.exists() or time.monotonic() > deadline:
                raise
            time.sleep(5.0)


def seed_layout(prep: RunLayout, out: Path, seed: int) -> RunLayout:
    """Pre-training seed `seed`'s runs (OUT/pretrainP/pretrain, pretrain_shuffled, ..., finetune/), made
    from every input of the prep (dataset, split, sentences, pairs, weak labels, tokenizer ...)."""
    # the stage outputs are left None, so RunLayout puts them under the seed's own directory
    return replace(prep, out=out / f"pretrain{seed}", dataset=prep.dataset_dir, pretrain=None,
                   finetune=None, evaluation=None, report=None)


def pretrain_all(prep: RunLayout, settings: PipelineConfig, seeds: list[int], inits: list[str], out: Path,
                 ) -> dict:
    """Pre-train every pre-trained init with every seed (skipping finished seeds); (init, seed) -> dir."""
    from usconvirt.stages import run_pretrain

    pretrained = tuple(i for i in inits if i in PRETRAINED)
    dirs = {}
    for seed in seeds:
        layout = seed_layout(prep, out, seed)
        dirs |= {(init, seed): layout.pretraining(init) for init in pretrained}
        if pretrained and all((layout.pretraining(i) / "diagnostics.json").exists() for i in pretrained):
            continue
        run_pretrain(replace(settings, pretrain=replace(settings.pretrain, seed=seed),
                             finetune_inits=pretrained), layout)
    return dirs


def finetune_all(prep: RunLayout, settings: PipelineConfig, dirs: dict, pretrain_seeds: list[int],
                 finetune_seeds: list[int], inits: list[str], out: Path) -> pd.DataFrame:
    from usconvirt.stages import run_finetune

    rows = []
    for p in pretrain_seeds:
        layout = seed_layout(prep, out, p)
        for f in finetune_seeds:
            for init in inits:
                spec = "random" if init == "random" else ("imagenet" if init == "imagenet"
                                                          else str(dirs[init, p]))
                name = f"{init}-f{f}"
                target = layout.finetuning(name)
                if not (target / "metrics.json").exists():
                    run_finetune(replace(settings, finetune=replace(settings.finetune, seed=100 * p + f)),
                                 layout, runs={name: spec})
                metrics = json.loads((target / "metrics.json").read_text())
                auc = {part: roc_auc(target / file)
                       for part, file in (("val", "val_predictions.csv"), ("test", "predictions.csv"))}
                rows.append({"init": init, "pretrain_seed": p, "finetune_seed": f,
                             "val_macro_f1": metrics["val"]["macro_f1"],
                             "test_macro_f1": metrics["test"]["macro_f1"],
                             "dev_macro_f1": (metrics["val"]["macro_f1"] + metrics["test"]["macro_f1"]) / 2,
                             "val_roc_auc": auc["val"], "test_roc_auc": auc["test"],
                             "dev_roc_auc": (auc["val"] + auc["test"]) / 2,
                             "collapsed": metrics["val"].get("collapsed")})
    return pd.DataFrame(rows)


def roc_auc(predictions_csv: Path) -> float:
    """Threshold-free: ROC AUC of P(abnormal) on one part (NaN when it holds one class)."""
    from sklearn.metrics import roc_auc_score

    from usconvirt.evaluation.evaluate import read_predictions

    table = read_predictions(predictions_csv)
    if table["label"].nunique() < 2:
        return float("nan")
    return float(roc_auc_score(table["label"], table["prob_abnormal"]))


def pretrain_diagnostics(dirs: dict) -> pd.DataFrame:
    rows = []
    for (init, seed), path in dirs.items():
        diag = json.loads((path / "diagnostics.json").read_text())
        retrieval = diag.get("heldout_retrieval") or {}
        rows.append({"init": init, "seed": seed, "ratio": diag["ratio"], "r@1": retrieval.get("r@1")})
    return pd.DataFrame(rows)


def paired_wins(runs: pd.DataFrame, init: str, other: str, column: str) -> float | None:
    """Share of (pretrain seed, finetune seed) cells where `init` beats `other`; ties count half."""
    if other not in set(runs["init"]) or init == other:
        return None
    wide = runs.pivot_table(index=["pretrain_seed", "finetune_seed"], columns="init", values=column)
    diff = wide[init] - wide[other]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def paired_differences(runs: pd.DataFrame, column: str) -> list[str]:
    """One line per (pre-trained init, control): the mean paired difference over the cells, its sd, and
    the cells won, so that a claim of gain over a control comes straight from the study."""
    wide = runs.pivot_table(index=["pretrain_seed", "finetune_seed"], columns="init", values=column)
    lines = []
    for init in (i for i in wide.columns if i != "random"):
        # ConVIRT is also compared with the image-only and report-label controls
        controls = ("random", "shuffled") + (("simclr", "report_labels") if init == "convirt" else ())
        for other in (o for o in controls if o in wide.columns and o != init):
            diff = (wide[init] - wide[other]).dropna()
            if len(diff) == 0:
                continue
            sd = f"{diff.std():.3f}" if len(diff) > 1 else "n/a"
            won = int((diff > 0).sum())
            lines.append(f"{init} minus {other}: {diff.mean():+.3f} (paired sd {sd}; "
                         f"won {won} of {len(diff)} cells)")
    return lines


def summary_table(runs: pd.DataFrame, diagnostics: pd.DataFrame, part: str) -> pd.DataFrame:
    column = f"{part}_macro_f1"
    rows = []
    for init, group in runs.groupby("init", sort=False):
        values = group[column].astype(float).tolist()
        diag = diagnostics[diagnostics["init"] == init] if len(diagnostics) else diagnostics
        rows.append({
            "init": init, "runs": len(values), f"{part} macro-F1 mean": statistics.mean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "AUC": float(group[f"{part}_roc_auc"].astype(float).mean()),
            "gain vs random": statistics.mean(values) - runs.loc[runs["init"] == "random", column].mean()
            if "random" in set(runs["init"]) else None,
            "wins vs random": paired_wins(runs, init, "random", column),
            "wins vs shuffled": paired_wins(runs, init, "shuffled", column),
            "collapsed": int(group["collapsed"].fillna(False).astype(bool).sum()),
            "loss/chance": float(diag["ratio"].mean()) if len(diag) else None,
            "held-out R@1": float(diag["r@1"].dropna().mean()) if len(diag) and diag["r@1"].notna().any()
            else None,
        })
    return pd.DataFrame(rows)


def visibility_ceiling(prep: RunLayout) -> dict[str, float] | None:
    """Macro-F1, per part, of an oracle that calls a frame abnormal exactly when it shows its finding.

    The synthetic corpus labels every frame of an abnormal kidney abnormal, though a focal lesion shows
    on some frames only; no frame-level classifier can do better than seeing what the frame shows. Read
    from the synthetic truth table for scoring only (None for a real export, which has none).
    """
    from sklearn.metrics import f1_score

    from usconvirt.data import load_dataset
    from usconvirt.data.split import read_split
    from usconvirt.training.finetune import labeled_frames

    truth_file = prep.dataset_dir / "truth.parquet"
    if not truth_file.exists():
        return None
    frames = labeled_frames(load_dataset(prep.dataset_dir), read_split(prep.split))
    frames = frames.merge(pd.read_parquet(truth_file, columns=["image_id", "finding_visible"]), on="image_id")
    ceiling = {part: float(f1_score(group["target"], group["finding_visible"].astype(int), average="macro"))
               for part, group in frames.groupby("part")}
    if "val" in ceiling and "test" in ceiling:
        ceiling["dev"] = (ceiling["val"] + ceiling["test"]) / 2
    return ceiling


def with_setting(config: dict, assignment: str) -> dict:
    """A copy of `config` with `a.b.c=value` set; the value is parsed as YAML (`false`, `1e-3`, `[1, 2]`)."""
    import yaml

    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"--set {assignment!r}: expected SECTION.KEY=VALUE")
    *parents, leaf = key.strip().split(".")
    out = dict(config)
    node = out
    for name in parents:
        node[name] = dict(node.get(name) or {})
        node = node[name]
    node[leaf] = yaml.safe_load(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--synth-seed", type=int, default=None, help="corpus seed (synthetic configs)")
    parser.add_argument("--pretrain-seeds", type=int, default=3)
    parser.add_argument("--finetune-seeds", type=int, default=3)
    parser.add_argument("--inits", default="random,convirt,shuffled,simclr")
    parser.add_argument("--pretrain-epochs", type=int, default=None)
    parser.add_argument("--only-pretrain-seed", type=int, default=None,
                        help="run only this pre-training seed's cells (several processes in parallel); "
                             "a final run without it gathers the finished runs and prints the table")
    parser.add_argument("--score", choices=("val", "dev", "test"), default="val",
                        help="part to report: val (or dev = mean of val and test, on a development corpus "
                             "seed) while choosing settings, test once at the end")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config setting (repeatable; the value is read as YAML)")
    args = parser.parse_args()

    from usconvirt.config import load_yaml
    from usconvirt.pipeline_config import validate_pipeline_config

    config = load_yaml(args.config)
    config["pairing"] = {**(config.get("pairing") or {}), "match_laterality": False}  # the paper's pairing
    config["label_efficiency"] = {**(config.get("label_efficiency") or {}), "enabled": False}
    if args.pretrain_epochs is not None:
        config["pretrain"] = {**(config.get("pretrain") or {}), "epochs": args.pretrain_epochs}
    for assignment in args.set:
        config = with_setting(config, assignment)
    if args.synth_seed is not None:
        config["synth"] = {**(config.get("synth") or {}), "seed": args.synth_seed}
    inits = [i.strip() for i in args.inits.split(",") if i.strip()]
    pretrain_seeds, finetune_seeds = list(range(args.pretrain_seeds)), list(range(args.finetune_seeds))
    if args.only_pretrain_seed is not None:
        pretrain_seeds = [args.only_pretrain_seed]

    settings = validate_pipeline_config(config, source=str(args.config))
    prep = prepare(config, args.out, wait_s=1800.0 if args.only_pretrain_seed is not None else 0.0)
    dirs = pretrain_all(prep, settings, pretrain_seeds, inits, args.out)
    runs = finetune_all(prep, settings, dirs, pretrain_seeds, finetune_seeds, inits, args.out)
    runs.to_csv(args.out / "seed_study.csv", index=False)
    table = summary_table(runs, pretrain_diagnostics(dirs), args.score)
    print(f"seed study: {args.pretrain_seeds} pre-training x {args.finetune_seeds} fine-tuning seeds, "
          f"corpus seed {config.get('synth', {}).get('seed')}, {args.score} part")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for line in paired_differences(runs, f"{args.score}_macro_f1"):
        print(line)
    ceiling = visibility_ceiling(prep)
    if ceiling and args.score in ceiling:
        print(f"ceiling: {ceiling[args.score]:.3f} macro-F1 on the {args.score} part for an oracle that "
              "calls a frame abnormal exactly when it shows its finding (synthetic truth, scoring only)")


if __name__ == "__main__":
    main()
