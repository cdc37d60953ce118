"""Text stage bench: sentences/s per backend on synthetic reports, and kidney-sentence selection on the
hand-labelled gold sets (precision, recall, F1, laterality and abnormal accuracy), per hard group and
report style, for the development part (kidney_gold.txt, gold_dev.txt, gold_dev_b.txt, gold_dev_c.txt,
gold_dev_d.txt) and the test part (gold_test_b.txt).

    .venv/bin/python bench/text_bench.py [--sentences 10000] [--backends eds quickumls] [--cache-dir DIR]
        [--qualifiers rules eds] [--parts dev test]

The test part is for the final figures only: choose rules and settings on the development part.

Run it on one core (e.g. `taskset -c 0`) to compare with the 5,000 sentences/s goal. The stage is
single-threaded, so 'sent/s cpu' (process CPU time) is the one-core rate even on a busy machine;
'sent/s wall' also counts time lost to other processes.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from usconvirt.synth.config import Prevalences
from usconvirt.synth.exam import sample_exam
from usconvirt.synth.reports import write_report
from usconvirt.text import SentenceConfig, exam_summary, extract_sentences
from usconvirt.text.gold import match_gold, read_gold, score
from usconvirt.text.segment import base_nlp, sentence_spans

DATA = Path(__file__).resolve().parent.parent / "tests" / "text" / "data"
PARTS = {
    "dev": ("kidney_gold.txt", "gold_dev.txt", "gold_dev_b.txt", "gold_dev_c.txt", "gold_dev_d.txt"),
    "test": ("gold_test_b.txt",),
}
GROUP_NAMES = {"c": "continues", "v": "vocabulary", "s": "side", "l": "landmark"}
IMAGED = {"liver", "gallbladder", "pancreas", "spleen", "aorta", "kidney", "bladder"}


def synthetic_exams(n_sentences: int, seed: int) -> tuple[pd.DataFrame, list[bool], int]:
    """Synthetic reports until they hold `n_sentences` sentences; also each exam's true kidney status."""
    rng = np.random.default_rng(seed)
    nlp = base_nlp()
    reports, truth, total = [], [], 0
    while total < n_sentences:
        exam = sample_exam(rng, Prevalences(), f"s{len(reports)}", f"p{len(reports)}", "2024-01-01", "AB", 50)
        report = write_report(rng, exam, IMAGED, mention_unimaged=0.0, omit_imaged=0.0)
        total += len(sentence_spans(nlp(report)))
        reports.append(report)
        truth.append(exam.kidney_abnormal)
    exams = pd.DataFrame({"exam_id": [f"s{i}" for i in range(len(reports))], "report": reports})
    return exams, truth, total


def gold_part(part: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exams and gold sentences of a part, exam ids prefixed by their file so that they stay unique."""
    exams, sentences = [], []
    for name in PARTS[part]:
        e, g = read_gold(DATA / name)
        exams.append(e.assign(exam_id=name + ":" + e["exam_id"]))
        sentences.append(g.assign(exam_id=name + ":" + g["exam_id"]))
    return pd.concat(exams, ignore_index=True), pd.concat(sentences, ignore_index=True)


def group_rows(matched: pd.DataFrame, exams: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(name, matched rows) for all sentences, each hard group, each report style."""
    styles = dict(zip(exams["exam_id"], exams["style"], strict=True))
    style = matched["exam_id"].map(styles)
    rows = [("all", matched)]
    rows += [
        (f"group {name}", matched[matched["groups"].str.contains(code[0])])
        for code, name in GROUP_NAMES.items()
    ]
    rows += [(f"style {name}", matched[style == name]) for name in sorted(set(style) - {""})]
    return rows


def print_quality(label: str, exams: pd.DataFrame, gold: pd.DataFrame, config: SentenceConfig) -> None:
    matched = match_gold(extract_sentences(exams, config), gold)
    for name, rows in group_rows(matched, exams):
        if rows.empty:
            continue
        s = score(rows)
        print(
            f"{label:<22} {name:<18} {s['sentences']:>5} {s['positives']:>5} {s['precision']:6.3f} "
            f"{s['recall']:6.3f} {s['f1']:6.3f} {s['non_kidney_kept_out']:8.3f} "
            f"{s['laterality_accuracy']:8.3f} {s['abnormal_accuracy']:8.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["eds", "quickumls"])
    parser.add_argument("--qualifiers", nargs="+", default=["rules"], help="negation: rules and/or eds")
    parser.add_argument("--parts", nargs="+", default=["dev", "test"], choices=sorted(PARTS))
    parser.add_argument(
        "--cache-dir", default=None, help="QuickUMLS index cache (default ~/.cache/usconvirt)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend; the median is shown")
    args = parser.parse_args()

    exams, truth, n_sentences = synthetic_exams(args.sentences, args.seed)
    print(
        f"synthetic: {len(exams)} reports, {n_sentences} sentences; cpus available: "
        f"{len(os.sched_getaffinity(0))}"
    )
    header = (
        f"{'backend/qualifier':<22} {'build s':>8} {'sent/s cpu':>10} {'sent/s wall':>11} "
        f"{'synth abn agree':>15}"
    )
    print(header)
    print("-" * len(header))
    # EDS-NLP's qualifiers are compared on the default backend: negation does not depend on the matcher
    configs = [
        (f"{b}/{q}", SentenceConfig(backend=b, qualifier=q, cache_dir=args.cache_dir))
        for b in args.backends
        for q in args.qualifiers
        if b == "eds" or q == "rules"
    ]
    for label, config in configs:
        start = time.perf_counter()
        extract_sentences(exams.head(1), config)  # builds and caches the pipeline
        build = time.perf_counter() - start
        cpu_rates, wall_rates = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            selected = extract_sentences(exams, config)
            cpu_rates.append(n_sentences / (time.process_time() - cpu))
            wall_rates.append(n_sentences / (time.perf_counter() - wall))
        summary = exam_summary(selected, exams, "kidney")
        agree = np.mean(
            [
                (flag is not pd.NA and bool(flag)) == t
                for flag, t in zip(summary["abnormal"], truth, strict=True)
            ]
        )
        print(
            f"{label:<22} {build:8.1f} {np.median(cpu_rates):10.0f} {np.median(wall_rates):11.0f} "
            f"{agree:15.3f}"
        )
    for part in args.parts:
        gold_exams, gold = gold_part(part)
        print(
            f"\ngold {part} part: {len(gold_exams)} reports, {int((gold['kind'] != 'h').sum())} scored "
            f"sentences ({int((gold['kind'] == 'k').sum())} kidney)"
        )
        header = (
            f"{'backend/qualifier':<22} {'rows':<18} {'sent':>5} {'kid':>5} {'P':>6} {'R':>6} {'F1':>6} "
            f"{'non-kid':>8} {'lat acc':>8} {'abn acc':>8}"
        )
        print(header)
        print("-" * len(header))
        for label, config in configs:
            print_quality(label, gold_exams, gold, config)


if __name__ == "__main__":
    main()
