"""A small independent parser of kidney findings in French reports, to check reports against the truth."""

from __future__ import annotations

import re
import unicodedata

FINDING_PATTERNS = {
    "cyst": r"kyst",
    "stone": r"lithias|calcul",
    "hydronephrosis": r"dilat|hydronephros|distension",
    "atrophy": r"atroph|petit rein|nephropathie chronique",
    "mass": r"masse|tissulaire|solide|expansif|tumeur",
    "angiomyolipoma": r"angiomyolipom",
    "absent": r"nephrectom",
}
NEGATION = re.compile(r"\b(pas|sans|absence|aucun|aucune|ni|non)\b")
RIGHT = re.compile(r"\b(droit|droite|rd)\b")
LEFT = re.compile(r"\b(gauche|rg)\b")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def kidney_findings(report: str) -> set[tuple[str, str]]:
    """(side, finding) pairs stated affirmatively with a side in the same sentence."""
    found = set()
    for sentence in re.split(r"\.(?=\s|$)|\n", normalise(report)):
        sides = [s for s, pattern in (("right", RIGHT), ("left", LEFT)) if pattern.search(sentence)]
        if len(sides) != 1 or "vesicul" in sentence:
            continue
        for clause in re.split(r"(?<!\d),(?!\d)|;|\(|\)", sentence):
            if NEGATION.search(clause):
                continue
            for finding, pattern in FINDING_PATTERNS.items():
                if re.search(pattern, clause):
                    found.add((sides[0], finding))
    return found
