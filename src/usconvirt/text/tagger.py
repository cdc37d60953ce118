"""The concept-tagger interface shared by the two backends, and the factory that picks one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import edsnlp
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Span

from usconvirt.errors import InputError


@dataclass(frozen=True)
class Concept:
    """A UMLS concept found in a report: character offsets, CUI, and the matched words normalised."""

    start: int
    end: int
    cui: str
    norm: str


class ConceptTagger(Protocol):
    """A backend: `nlp` segments reports into sentences; `concepts` tags each sentence of one report."""

    nlp: Pipeline

    def concepts(self, sentences: list[Span]) -> list[list[Concept]]: ...


@dataclass(frozen=True)
class TaggerOptions:
    """Everything that determines a tagger; hashable so that built taggers are cached."""

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


def base_nlp() -> Pipeline:
    """EDS-NLP pipeline that normalises (lowercase, no accents) and splits French clinical sentences."""
    nlp = edsnlp.blank("eds")
    # spaces and pollution marking only serve EDS-NLP's own exclusions; skipping them halves the time
    nlp.add_pipe("eds.normalizer", config={"spaces": False, "pollution": False})
    nlp.add_pipe("eds.sentences", config={"use_bullet_start": True})
    return nlp


@lru_cache(maxsize=4)
def create_tagger(options: TaggerOptions) -> ConceptTagger:
    """Build (once per options) the EDS-NLP or QuickUMLS tagger over the UMLS terms."""
    if options.backend == "eds":
        from usconvirt.text.tagger_eds import EdsTagger

        return EdsTagger(options)
    if options.backend == "quickumls":
        from usconvirt.text.tagger_quickumls import QuickUMLSTagger

        return QuickUMLSTagger(options)
    raise InputError(f"unknown backend '{options.backend}'; expected 'eds' or 'quickumls'", field="backend")


def cache_root(cache_dir: str | Path | None) -> Path:
    """Where built indexes live: the configured dir, else $XDG_CACHE_HOME/usconvirt or ~/.cache/usconvirt."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "usconvirt"
