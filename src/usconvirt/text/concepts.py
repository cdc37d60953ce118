"""What concept tagging produces and what determines it: the `Concept` type and the tagger options.

Imports nothing heavy, so that configs and tests can name them without loading EDS-NLP or QuickUMLS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Concept:
    """A UMLS concept found in a report: character offsets, CUI, and the matched words normalised."""

    start: int
    end: int
    cui: str
    norm: str


@dataclass(frozen=True)
class TaggerOptions:
    """Everything that determines a text pipeline; hashable so that built pipelines are cached."""

    backend: str
    umls_dir: str | None
    semantic_types: tuple[str, ...]
    extra_cuis: tuple[str, ...]
    term_matcher: str
    threshold: float
    window: int
    similarity: str
    min_match_length: int
    cache_dir: str | None
    qualifier: str = (
        "rules"  # negation of findings: rules (qualifiers.py) or eds (eds.negation + eds.hypothesis)
    )
    carry_subject: bool = True  # a follow-up sentence naming no organ continues the previous one's
    use_headings: bool = True  # a sentence under "REINS :" belongs to the kidney
    keep_renal_function: bool = False  # renal-function and lab statements count as kidney sentences
