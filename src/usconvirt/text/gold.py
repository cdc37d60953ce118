"""Hand-labelled gold reports (tests/text/data/*.txt format) and scoring of organ sentences.

A gold sentence counts as selected when predicted sentences of the organ cover most of its characters,
so that scores do not depend on the segmenter splitting exactly where the annotator did.
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
    """(exams: exam_id/report/style; gold sentences: exam_id/start/end/kind/laterality/abnormal/groups)."""
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


def match_gold(predicted: pd.DataFrame, gold: pd.DataFrame, organ: str = "kidney") -> pd.DataFrame:
    """Gold sentences (headings left out) with the best-overlapping predicted organ sentence, if any."""
    mine = predicted[predicted["organ"] == organ]
    by_exam = {exam: group for exam, group in mine.groupby("exam_id")}
    rows = []
    for g in gold[gold["kind"] != "h"].itertuples():
        best, best_overlap = None, 0
        for p in by_exam.get(g.exam_id, mine.iloc[:0]).itertuples():
            overlap = min(g.end, p.end) - max(g.start, p.start)
            if overlap > best_overlap:
                best, best_overlap = p, overlap
        selected = best is not None and best_overlap * 2 > g.end - g.start
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
