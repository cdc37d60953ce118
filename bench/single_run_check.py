"""How often one `usconvirt run` would show a gain: each cell of a seed study scored as a single run.

    python bench/single_run_check.py STUDY_DIR           # convirt against random, shuffled, simclr
    python bench/single_run_check.py STUDY_DIR --reference convirt --against random,shuffled

A seed study's cell (p, f) holds what one `usconvirt run` with pre-training seed p and fine-tuning seed
100 p + f gives: every initialisation fine-tuned with the same seeds and scored on the same test frames. Each
cell is scored here as `usconvirt evaluate` scores a run: the paired patient-bootstrap 95% interval of
the reference's macro-F1 minus each other init's (the same resamples, 1,000 by default, seed 0). The table
says, per cell, whether it meets issue 12's single-run goal (the interval against the first `--against`
init above 0, and a gain over the others) and whether every interval lies above 0. The last lines give
the share of cells that meet each, and the mean interval half-width beside the mean gain. A half-width shrinks
about as one over the square root of the test patients, so the patients at which it would equal the mean
gain is printed too: a rough size for a test part that could show a gain of that size (at the 95% level,
about half the time).

It reads the study's test predictions only (`pretrainP/finetune/INIT-fF/predictions.csv`); it trains
nothing and chooses nothing, so it can be run on a held-aside study that was already scored.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from usconvirt.evaluation.evaluate import read_predictions, run_metrics
from usconvirt.evaluation.metrics import confidence_interval

CELL = re.compile(r"pretrain(\d+)/finetune/(.+)-f(\d+)/predictions\.csv$")


def cell_predictions(study: Path) -> dict[tuple[int, int], dict[str, Path]]:
    """{(pretrain seed, fine-tuning seed): {init: predictions.csv}} for every finished run of a study."""
    cells: dict[tuple[int, int], dict[str, Path]] = {}
    for path in sorted(study.glob("pretrain*/finetune/*-f*/predictions.csv")):
        match = CELL.search(path.relative_to(study).as_posix())
        if match:
            p, init, f = int(match[1]), match[2], int(match[3])
            cells.setdefault((p, f), {})[init] = path
    return cells


def paired_gain(reference: tuple[dict, dict], other: pd.DataFrame, *, n_bootstrap: int, seed: int,
                ) -> tuple[float, float, float]:
    """Macro-F1 of the reference (its `run_metrics` point and samples) minus `other`'s, scored on the
    same resamples, with the paired 95% interval."""
    ref_point, ref_samples = reference
    other_point, other_samples = run_metrics(other, n_bootstrap=n_bootstrap, seed=seed)
    low, high = confidence_interval(ref_samples["macro_f1"] - other_samples["macro_f1"])
    return ref_point["macro_f1"] - other_point["macro_f1"], low, high


def cell_table(study: Path, reference: str, against: list[str], *, n_bootstrap: int = 1000,
               seed: int = 0) -> tuple[pd.DataFrame, int]:
    """One row per complete cell: each gain with its interval, and whether every interval is above 0.
    Also returns the number of test patients (the same in every cell)."""
    rows, patients = [], 0
    for (p, f), runs in sorted(cell_predictions(study).items()):
        if reference not in runs or any(name not in runs for name in against):
            continue
        ref = read_predictions(runs[reference])
        patients = int(ref["patient_id"].nunique())
        ref_metrics = run_metrics(ref, n_bootstrap=n_bootstrap, seed=seed)
        row: dict[str, object] = {"pretrain_seed": p, "finetune_seed": f}
        for name in against:
            other = read_predictions(runs[name])
            if sorted(ref["image_id"]) != sorted(other["image_id"]):
                raise SystemExit(f"{runs[name]}: not scored on the test frames of {runs[reference]}")
            gain, low, high = paired_gain(ref_metrics, other, n_bootstrap=n_bootstrap, seed=seed)
            row.update({f"minus {name}": gain, f"{name} low": low, f"{name} high": high})
        # issue 12's wording: an interval above 0 against the first init, a point gain over the others
        row["goal met"] = (row[f"{against[0]} low"] > 0
                           and all(row[f"minus {name}"] > 0 for name in against[1:]))
        row["all above 0"] = all(row[f"{name} low"] > 0 for name in against)
        rows.append(row)
    return pd.DataFrame(rows), patients


def summary_lines(table: pd.DataFrame, patients: int, against: list[str]) -> list[str]:
    lines = []
    for name in against:
        gain = float(table[f"minus {name}"].mean())
        half = float(((table[f"{name} high"] - table[f"{name} low"]) / 2).mean())
        above = int((table[f"{name} low"] > 0).sum())
        needed = f"{patients * (half / gain) ** 2:.0f}" if gain > 0 else "none (mean gain not above 0)"
        lines.append(f"minus {name}: mean gain {gain:+.3f}, mean half-width {half:.3f}; interval above 0 in "
                     f"{above} of {len(table)} cells; test patients for a half-width equal to the gain: "
                     f"{needed} (now {patients})")
    others = ", ".join(against[1:]) or "no other"
    lines.append(f"interval above 0 against {against[0]} and a gain over {others}: "
                 f"{int(table['goal met'].sum())} of {len(table)} cells")
    lines.append(f"every interval above 0: {int(table['all above 0'].sum())} of {len(table)} cells")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a bench/seed_study.py --out directory")
    parser.add_argument("--reference", default="convirt", help="the init whose gains are scored")
    parser.add_argument("--against", default="random,shuffled,simclr",
                        help="comma-separated inits; the goal asks an interval above 0 against the first")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="patient resamples per interval")
    parser.add_argument("--seed", type=int, default=0, help="resampling seed (evaluation's default: 0)")
    args = parser.parse_args()
    against = [name for name in args.against.split(",") if name]
    table, patients = cell_table(args.study, args.reference, against, n_bootstrap=args.n_bootstrap,
                                 seed=args.seed)
    if table.empty:
        raise SystemExit(f"{args.study}: no cell holds {args.reference} and {', '.join(against)}")
    shown = table.copy()
    for name in against:
        shown[f"minus {name}"] = [f"{g:+.3f} ({lo:+.3f} to {hi:+.3f})" for g, lo, hi in
                                  zip(table[f"minus {name}"], table[f"{name} low"], table[f"{name} high"],
                                      strict=True)]
        shown = shown.drop(columns=[f"{name} low", f"{name} high"])
    print(f"single runs of {args.study}: {args.reference} minus each init, test macro-F1, paired "
          f"patient-bootstrap 95% interval ({args.n_bootstrap} resamples, {patients} test patients)")
    print(shown.to_string(index=False))
    for line in summary_lines(table, patients, against):
        print(line)


if __name__ == "__main__":
    main()
