"""Hand-labelled gold reports (tests/text/data/*.txt format) and scoring of organ sentences.

A gold sentence counts as selected when predicted sentences of the organ cover most of its characters,
so that scores do not depend on the segmenter splitting exactly where the annotator did.
`read_tagged_text` reads the other format, that of the real-text sets of ../shared/data/text (its README):
"=== ID" opens a document, each "TAG|text" line is a sentence (K:LAT:ABN, N, or A left out of scoring).
Each report has a style (the word after its id: structured, prose, telegraphic, conclusion; older files
have none) and each sentence the hard groups of its code's 4th+ characters (see gold_dev_d.txt).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from usconvirt.errors import InputError

SIDES = {"l": "left", "r": "right", "b": "both", "u": "unspecified", "-": ""}
FLAGS = {"1": True, "0": False, "?": None, "-": None}
GROUPS = {"c": "continues", "v": "vocabulary", "s": "side", "l": "landmark"}
STYLES = ("structured", "prose", "telegraphic", "conclusion")


def read_gold(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(exams: exam_id/report/style; gold sentences: exam_id/start/end/kind/laterality/abnormal/groups/
    text)."""
    path = Path(path)
    reports: dict[str, list[str]] = {}
    styles: dict[str, str] = {}
    sentences: list[dict] = []
    current = None
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            words = line[1:].split()
            current = words[0]
            reports[current] = []
            styles[current] = words[1] if len(words) > 1 and words[1] in STYLES else ""
            continue
        if current is None:
            raise InputError("sentence before the first '@ ID' line", file=path, row=row)
        parts = reports[current]
        if line == "~":
            parts.append("\n")
            continue
        joined, line = line.startswith("+"), line.lstrip("+")
        code, _, text = line.partition(" ")
        if (
            len(code) < 3
            or code[0] not in "k.h"
            or code[1] not in SIDES
            or code[2] not in FLAGS
            or any(g not in GROUPS for g in code[3:])
        ):
            raise InputError(f"bad label code '{code}'", file=path, row=row)
        if parts:
            parts.append(" " if joined else "\n")
        start = sum(len(p) for p in parts)
        parts.append(text)
        sentences.append(
            {
                "exam_id": current,
                "start": start,
                "end": start + len(text),
                "kind": code[0],
                "laterality": SIDES[code[1]],
                "abnormal": FLAGS[code[2]],
                "groups": "".join(GROUPS[g][0] for g in code[3:]),
                "text": text,
            }
        )
    exams = pd.DataFrame(
        {
            "exam_id": list(reports),
            "report": ["".join(p) for p in reports.values()],
            "style": [styles[e] for e in reports],
        }
    )
    return exams, pd.DataFrame(sentences)


TAGGED_SIDES = {"R": "right", "L": "left", "B": "both", "U": "unspecified"}


def read_tagged_text(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exams and gold sentences (as `read_gold`) of a tagged real-text file: "=== ID", then "TAG|text"
    lines joined by a space, or by a newline when the text starts with a literal "\\n"; A is kind 'h'
    (left out of scoring)."""
    path = Path(path)
    reports: dict[str, list[str]] = {}
    sentences: list[dict] = []
    current = None
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("==="):
            current = line[3:].strip()
            reports[current] = []
            continue
        tag, bar, text = line.partition("|")
        fields = tag.split(":")
        if current is None or not bar:
            raise InputError("expected '=== ID' then 'TAG|text' lines", file=path, row=row)
        if not (fields[0] in ("N", "A") and len(fields) == 1) and not (
            fields[0] == "K" and len(fields) == 3 and fields[1] in TAGGED_SIDES and fields[2] in "10-"
        ):
            raise InputError(f"bad tag '{tag}' (expected K:R|L|B|U:1|0|-, N or A)", file=path, row=row)
        parts = reports[current]
        newline = text.startswith("\\n")
        text = text[2:] if newline else text
        if parts:
            parts.append("\n" if newline else " ")
        start = sum(len(p) for p in parts)
        parts.append(text)
        kidney = fields[0] == "K"
        sentences.append(
            {
                "exam_id": current,
                "start": start,
                "end": start + len(text),
                "kind": {"K": "k", "N": ".", "A": "h"}[fields[0]],
                "laterality": TAGGED_SIDES[fields[1]] if kidney else "",
                "abnormal": {"1": True, "0": False}.get(fields[2]) if kidney else None,
                "groups": "",
                "text": text,
            }
        )
    exams = pd.DataFrame(
        {"exam_id": list(reports), "report": ["".join(p) for p in reports.values()], "style": "prose"}
    )
    return exams, pd.DataFrame(sentences)


def match_gold(predicted: pd.DataFrame, gold: pd.DataFrame, organ: str = "kidney") -> pd.DataFrame:
    """Gold sentences (headings left out) with the best-overlapping predicted organ sentence, if any: it
    selects the gold sentence when it covers at least half of its non-space characters."""
    mine = predicted[predicted["organ"] == organ]
    by_exam = {exam: group for exam, group in mine.groupby("exam_id")}
    rows = []
    for g in gold[gold["kind"] != "h"].itertuples():
        best, best_overlap = None, 0
        for p in by_exam.get(g.exam_id, mine.iloc[:0]).itertuples():
            if min(g.end, p.end) <= max(g.start, p.start):
                continue
            covered = p.text[max(g.start, p.start) - p.start : min(g.end, p.end) - p.start]
            overlap = len(covered) - covered.count(" ") - covered.count("\n")
            if overlap > best_overlap:
                best, best_overlap = p, overlap
        own = len(g.text) - g.text.count(" ") - g.text.count("\n")
        selected = best is not None and best_overlap * 2 >= own
        abnormal = best.abnormal if selected and not pd.isna(best.abnormal) else None
        rows.append(
            {
                "exam_id": g.exam_id,
                "start": g.start,
                "end": g.end,
                "gold": g.kind == "k",
                "selected": selected,
                "gold_laterality": g.laterality,
                "gold_abnormal": g.abnormal,
                "laterality": best.laterality if selected else "",
                "abnormal": abnormal,
                "groups": getattr(g, "groups", ""),
                "selected_by": best.selected_by if selected else "",
                "text": g.text,
            }
        )
    return pd.DataFrame(rows)


def score(matched: pd.DataFrame) -> dict[str, float]:
    """Precision, recall and F1 of organ-sentence selection; laterality and abnormal accuracy on hits."""
    tp = int((matched["gold"] & matched["selected"]).sum())
    fp = int((~matched["gold"] & matched["selected"]).sum())
    fn = int((matched["gold"] & ~matched["selected"]).sum())
    tn = int((~matched["gold"] & ~matched["selected"]).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    hits = matched[matched["gold"] & matched["selected"]]
    accuracy = {
        name: float(sum(a == b for a, b in zip(hits[name], hits[f"gold_{name}"], strict=True)) / len(hits))
        if len(hits)
        else 0.0
        for name in ("laterality", "abnormal")
    }
    return {
        "sentences": len(matched),
        "positives": int(matched["gold"].sum()),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "non_kidney_kept_out": tn / (tn + fp) if tn + fp else 1.0,
        "laterality_accuracy": accuracy["laterality"],
        "abnormal_accuracy": accuracy["abnormal"],
    }
