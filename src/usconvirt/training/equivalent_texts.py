"""Which texts of a pre-training batch say the same thing, so that the loss does not push them apart.

ConVIRT's InfoNCE treats every other text of the batch as a negative. Reports written from a template
describe a normal kidney in a handful of phrasings, so many of those negatives are the pair's own text or
an equivalent one, and the loss rewards telling exams apart by incidental wording. Each text gets an
integer key; texts with equal keys are equivalent, and the loss gives them shared (multi-positive)
targets (losses/infonce.py). `pretrain.equivalent_texts`:
- `none`: plain ConVIRT; keys are still computed (as `identical`), to count equivalent negatives.
- `identical`: equal after normalisation (lower case, accents, punctuation and spacing folded).
- `findings`: equal sets of findings from the sentence stage, one per sentence: organ, side (laterality),
  abnormal; a sentence the sentence table does not hold keeps its normalised wording.
Keys are 64-bit hashes of a canonical string, so every worker and every rank gives a text the same key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping

import pandas as pd

from usconvirt.training.config import EQUIVALENCES

__all__ = ["EQUIVALENCES", "TextKeys", "normalised", "sentence_findings", "text_key"]


def normalised(text: str) -> str:
    """Lower case, accents stripped, punctuation and runs of spaces folded to one space."""
    folded = unicodedata.normalize("NFKD", str(text).lower())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[\W_]+", " ", folded).split())


def text_key(canonical: str) -> int:
    """A signed 64-bit key (a torch.long) for a canonical string; equal strings, equal keys."""
    digest = hashlib.blake2b(canonical.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def sentence_findings(sentences: pd.DataFrame) -> dict[str, str]:
    """Normalised sentence -> 'organ|laterality|abnormal', from the sentence stage's table."""
    findings = {}
    for row in sentences[["text", "organ", "laterality", "abnormal"]].itertuples(index=False):
        # the sentence stage leaves the status missing where it reads none (nullable booleans)
        status = "unknown" if pd.isna(row.abnormal) else bool(row.abnormal)
        findings[normalised(row.text)] = f"{row.organ}|{row.laterality}|{status}"
    return findings


class TextKeys:
    """The key of the text made of these sentences (one drawn sentence, or all of them joined); a class
    rather than a closure so that loader worker processes can be spawned with it."""

    def __init__(self, mode: str = "none", findings: Mapping[str, str] | None = None) -> None:
        self.by_findings = mode == "findings"
        self.findings = dict(findings or {})

    def __call__(self, sentences: list[str]) -> int:
        if self.by_findings:
            return text_key("\n".join(sorted({self.findings.get(s, s) for s in map(normalised, sentences)})))
        return text_key(normalised(" ".join(sentences)))
