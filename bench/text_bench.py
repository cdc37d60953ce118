"""Text stage bench: sentences/s per backend on synthetic reports, and kidney-sentence selection on the
hand-labelled gold sets (precision, recall, F1, laterality and abnormal accuracy), per hard group and
report style, for the development part (kidney_gold.txt, gold_dev.txt, gold_dev_b.txt, gold_dev_c.txt,
gold_dev_d.txt) and the test part (gold_test_b.txt); then the real French clinical text of
../shared/data/text (`--real`), per error kind, each figure beside that of a keyword regex (the floor).

    .venv/bin/python bench/text_bench.py [--sentences 10000] [--backends eds quickumls] [--cache-dir DIR]
        [--qualifiers rules eds] [--parts dev test] [--real PATH ...] [--repeats 3]

The test part is for the final figures only: choose rules and settings on the development part.
The real text (default ../shared/data/text/e3c_kidney_dev.txt beside the main checkout, or
$USCONVIRT_SHARED/data/text/...) is scored as its README says: a kidney sentence is found when one
selected span covers at least half of its non-space characters; A sentences are left out. Its errors
are sorted into kinds (`ERROR_KINDS`) by the bench's own cues, independent of the stage's rules.

Run it on one core (e.g. `taskset -c 0`) to compare with the 5,000 sentences/s goal. The stage is
single-threaded, so 'sent/s cpu' (process CPU time) is the one-core rate even on a busy machine;
'sent/s wall' also counts time lost to other processes.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from usconvirt.synth.config import Prevalences
from usconvirt.synth.exam import sample_exam
from usconvirt.synth.reports import write_report
from usconvirt.text import SentenceConfig, exam_summary, extract_sentences
from usconvirt.text.gold import match_gold, read_gold, read_tagged_text, score
from usconvirt.text.segment import base_nlp, sentence_spans

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "text" / "data"
# ../shared beside the main checkout; a worktree elsewhere passes --real PATH
REAL = (
    Path(os.environ.get("USCONVIRT_SHARED", ROOT.parent / "shared")) / "data" / "text" / "e3c_kidney_dev.txt"
)
PARTS = {
    "dev": ("kidney_gold.txt", "gold_dev.txt", "gold_dev_b.txt", "gold_dev_c.txt", "gold_dev_d.txt"),
    "test": ("gold_test_b.txt",),
}
GROUP_NAMES = {"c": "continues", "v": "vocabulary", "s": "side", "l": "landmark"}
IMAGED = {"liver", "gallbladder", "pancreas", "spleen", "aorta", "kidney", "bladder"}
# The floor: a sentence naming the kidney by a keyword is a kidney sentence; side from droit/gauche/plural,
# abnormal unless a negation or normality word appears.
KEYWORD = re.compile(r"\b(reins?|r[ée]n(al|ale|aux|ales)|n[ée]phr\w*|py[ée]l\w*|calic\w*)\b", re.IGNORECASE)
NORMAL_OR_NEGATED = re.compile(r"\b(norma\w*|pas|sans|aucune?|absence|ni)\b", re.IGNORECASE)
# Cues that sort the errors on real text into kinds; the bench's own, independent of the stage's rules.
FUNCTION_CUES = re.compile(
    r"insuffisance r[ée]nale|fonction r[ée]nale|bilan r[ée]nal|cr[ée]atinin|clairance|dialys|ur[ée]e\b|"
    r"prot[ée]inurie|n[ée]phropathie|n[ée]phrotique|colique n[ée]phr[ée]tique",
    re.IGNORECASE,
)
ERROR_KINDS = (
    ("fp function/lab", "a renal-function or lab statement selected"),
    ("fp carried", "a sentence naming no kidney selected by heading or carried subject"),
    ("fp no kidney word", "selected by a concept although no kidney keyword appears (ambiguous anatomy)"),
    ("fp kidney word", "names the kidney but is not about it (landmark, other organ)"),
    ("fn kidney named", "a kidney sentence naming it, missed"),
    ("fn needs context", "a kidney sentence without a kidney keyword, missed"),
    ("side wrong", "found kidney sentence, wrong side"),
    ("abnormal wrong", "found kidney sentence, wrong normal/abnormal"),
)


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


def keyword_sentences(exams: pd.DataFrame) -> pd.DataFrame:
    """The keyword-regex floor, in the stage's output columns."""
    nlp = base_nlp()
    rows = []
    for exam_id, report in zip(exams["exam_id"], exams["report"], strict=True):
        for span in sentence_spans(nlp(report)):
            text = span.text
            if not KEYWORD.search(text):
                continue
            words = set(re.findall(r"\w+", text.lower()))
            right, left = bool(words & {"droit", "droite"}), bool(words & {"gauche"})
            plural = bool(words & {"reins", "bilatérale", "bilatéral", "rénaux"})
            side = (
                "both"
                if (right and left) or plural
                else "right"
                if right
                else "left"
                if left
                else "unspecified"
            )
            rows.append(
                {
                    "exam_id": exam_id,
                    "start": span.start_char,
                    "end": span.end_char,
                    "text": text,
                    "organ": "kidney",
                    "laterality": side,
                    "abnormal": not NORMAL_OR_NEGATED.search(text),
                    "selected_by": "keyword",
                }
            )
    return pd.DataFrame(
        rows, columns=["exam_id", "start", "end", "text", "organ", "laterality", "abnormal", "selected_by"]
    )


def error_kinds(matched: pd.DataFrame) -> dict[str, int]:
    """Counts of each `ERROR_KINDS` error."""
    named = matched["text"].map(lambda t: bool(KEYWORD.search(t)))
    function = matched["text"].map(lambda t: bool(FUNCTION_CUES.search(t)))
    fp = ~matched["gold"] & matched["selected"]
    fn = matched["gold"] & ~matched["selected"]
    hits = matched["gold"] & matched["selected"]
    inherited = matched["selected_by"].isin(["heading", "carried"])
    return {
        "fp function/lab": int((fp & function).sum()),
        "fp carried": int((fp & ~function & inherited).sum()),
        "fp no kidney word": int((fp & ~function & ~inherited & ~named).sum()),
        "fp kidney word": int((fp & ~function & ~inherited & named).sum()),
        "fn kidney named": int((fn & named).sum()),
        "fn needs context": int((fn & ~named).sum()),
        "side wrong": int((hits & (matched["laterality"] != matched["gold_laterality"])).sum()),
        "abnormal wrong": int(
            (
                hits
                & np.array(
                    [a != b for a, b in zip(matched["abnormal"], matched["gold_abnormal"], strict=True)]
                )
            ).sum()
        ),
    }


def print_real(path: Path, configs: list[tuple[str, SentenceConfig]]) -> None:
    """Scores and error kinds on a tagged real-text file, each beside the keyword regex's."""
    exams, gold = read_tagged_text(path)
    floor = match_gold(keyword_sentences(exams), gold)
    base = score(floor)
    print(
        f"\nreal text {path.name}: {len(exams)} excerpts, {int((gold['kind'] != 'h').sum())} scored "
        f"sentences ({int((gold['kind'] == 'k').sum())} kidney); each cell: stage (keyword regex)"
    )
    names = ("precision", "recall", "f1", "laterality_accuracy", "abnormal_accuracy")
    header = f"{'backend/qualifier':<22} " + " ".join(f"{n[:13]:>15}" for n in names)
    print(header)
    print("-" * len(header))
    kinds = {}
    for label, config in configs:
        matched = match_gold(extract_sentences(exams, config), gold)
        s = score(matched)
        print(f"{label:<22} " + " ".join(f"{s[n]:7.3f} ({base[n]:5.3f})" for n in names))
        kinds[label] = error_kinds(matched)
    floor_kinds = error_kinds(floor)
    print(f"\n{'error kind':<20} " + " ".join(f"{label:>18}" for label in kinds) + f" {'keyword regex':>14}")
    for kind, meaning in ERROR_KINDS:
        cells = " ".join(f"{kinds[label][kind]:>18}" for label in kinds)
        print(f"{kind:<20} {cells} {floor_kinds[kind]:>14}   {meaning}")


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
    parser.add_argument(
        "--real", nargs="*", type=Path, default=[REAL], help="tagged real-text files (none: skip)"
    )
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
    for path in args.real:
        print_real(path, configs)


if __name__ == "__main__":
    main()
