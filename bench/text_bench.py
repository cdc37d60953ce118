"""Text stage bench: sentences/s per backend on synthetic reports, and kidney-sentence selection on the
hand-labelled gold set (precision, recall, F1, laterality and abnormal accuracy).

    .venv/bin/python bench/text_bench.py [--sentences 10000] [--backends eds quickumls] [--cache-dir DIR]

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
from usconvirt.text.segment import sentence_spans
from usconvirt.text.tagger import base_nlp

GOLD = Path(__file__).resolve().parent.parent / "tests" / "text" / "data" / "kidney_gold.txt"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["eds", "quickumls"])
    parser.add_argument("--cache-dir", default=None,
                        help="QuickUMLS index cache (default ~/.cache/usconvirt)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per backend; the median is shown")
    args = parser.parse_args()

    exams, truth, n_sentences = synthetic_exams(args.sentences, args.seed)
    gold_exams, gold = read_gold(GOLD)
    print(f"synthetic: {len(exams)} reports, {n_sentences} sentences; gold: {len(gold_exams)} reports, "
          f"{int((gold['kind'] != 'h').sum())} scored sentences ({int((gold['kind'] == 'k').sum())} kidney); "
          f"cpus available: {len(os.sched_getaffinity(0))}")
    header = (f"{'backend':<10} {'build s':>8} {'sent/s cpu':>10} {'sent/s wall':>11} {'P':>6} {'R':>6} "
              f"{'F1':>6} {'lat acc':>8} "
              f"{'abn acc':>8} {'synth mention':>13} {'synth abn agree':>15}")
    print(header)
    print("-" * len(header))
    for backend in args.backends:
        config = SentenceConfig(backend=backend, cache_dir=args.cache_dir)
        start = time.perf_counter()
        extract_sentences(exams.head(1), config)  # builds and caches the tagger
        build = time.perf_counter() - start
        cpu_rates, wall_rates = [], []
        for _ in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            selected = extract_sentences(exams, config)
            cpu_rates.append(n_sentences / (time.process_time() - cpu))
            wall_rates.append(n_sentences / (time.perf_counter() - wall))
        summary = exam_summary(selected, exams, "kidney")
        mention = summary["mentioned"].mean()
        agree = np.mean([(flag == "true") == t for flag, t in zip(summary["abnormal"], truth, strict=True)])
        s = score(match_gold(extract_sentences(gold_exams, config), gold))
        print(f"{backend:<10} {build:8.1f} {np.median(cpu_rates):10.0f} {np.median(wall_rates):11.0f} "
              f"{s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f} "
              f"{s['laterality_accuracy']:8.3f} {s['abnormal_accuracy']:8.3f} {mention:13.3f} {agree:15.3f}")


if __name__ == "__main__":
    main()
