"""French clinical sentence segmentation: EDS-NLP's `eds.sentences`, cut at line starts, and re-joined
after abbreviations ("cf.", "Dr."). Component `usconvirt.sentences` sets `doc.spans["sentences"]` and
`doc._.sentences`, one `annotations.SentenceAnnotation` per sentence that later components fill in."""

from __future__ import annotations

import edsnlp
from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc, Span, Token

from usconvirt.text.annotations import SentenceAnnotation

SENTENCES = "sentences"  # the doc.spans key every later component reads

# Tokens that end with a period without ending the sentence ("cf. compte rendu", "Dr. Martin").
# "cm." ends a sentence unless a lowercase word follows.
ABBREVIATIONS = frozenset({"cf", "dr", "pr", "mr", "mme", "mlle", "env", "ex", "p", "vs", "fig", "cm"})


def base_nlp() -> Pipeline:
    """EDS-NLP pipeline that normalises (lowercase, no accents) and splits French clinical sentences."""
    nlp = edsnlp.blank("eds")
    # spaces and pollution marking only serve EDS-NLP's own exclusions; skipping them halves the time
    nlp.add_pipe("eds.normalizer", config={"spaces": False, "pollution": False})
    nlp.add_pipe("eds.sentences", config={"use_bullet_start": True})
    nlp.add_pipe("usconvirt.sentences")
    return nlp


class SentenceSegmenter:
    """`usconvirt.sentences`: `doc.spans["sentences"]`, EDS-NLP's sentences re-cut by `sentence_spans`."""

    def __init__(self, nlp: Pipeline | None = None, name: str = "usconvirt.sentences"):
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        spans = sentence_spans(doc)
        doc.spans[SENTENCES] = spans
        norms = [t.norm_ for t in doc]  # once: iterating a span's tokens in each component costs more
        doc._.sentences = [
            SentenceAnnotation(s.start, s.end, s.start_char, s.end_char, norms[s.start : s.end])
            for s in spans
        ]
        return doc


registry.factory.register("usconvirt.sentences", assigns=["doc.spans"])(SentenceSegmenter)


def sentence_spans(doc: Doc) -> list[Span]:
    """Sentences of `doc` without surrounding whitespace."""
    tokens = list(doc)  # indexing a Doc builds a Token each time: build them once
    merged: list[tuple[int, int]] = []
    for piece_start, piece_end in _split_lines(doc, tokens):
        start, end = _strip(tokens, piece_start, piece_end)
        if start >= end:
            continue
        if merged and _continues(tokens, merged[-1][1], start):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return [doc[start:end] for start, end in merged]


def _split_lines(doc: Doc, tokens: list[Token]) -> list[tuple[int, int]]:
    """EDS-NLP sentences, also cut at line breaks before a line that does not start in lowercase.

    EDS-NLP keeps "1) Stéatose.\\n2) Lithiase." and "Reins :\\nÀ droite : ..." together; a lowercase
    next line is a wrapped sentence and stays joined.
    """
    pieces = []
    for sent in doc.sents:
        start = sent.start
        for i in range(sent.start, sent.end - 1):
            token, following = tokens[i], tokens[i + 1]
            if (
                token.is_space
                and "\n" in token.text
                and not following.is_space
                and not following.text[:1].islower()
            ):
                pieces.append((start, i + 1))
                start = i + 1
        pieces.append((start, sent.end))
    return pieces


def _strip(tokens: list[Token], start: int, end: int) -> tuple[int, int]:
    """Drop leading and trailing whitespace tokens."""
    while start < end and tokens[start].is_space:
        start += 1
    while end > start and tokens[end - 1].is_space:
        end -= 1
    return start, end


def _continues(tokens: list[Token], previous_end: int, start: int) -> bool:
    """Whether the sentence at `start` continues the one ending at `previous_end` (abbreviation split)."""
    if previous_end < 2 or tokens[previous_end - 1].text != ".":
        return False
    if any("\n" in t.text for t in tokens[previous_end:start]):
        return False
    abbreviation = tokens[previous_end - 2].norm_
    return abbreviation in ABBREVIATIONS and (abbreviation != "cm" or tokens[start].text[:1].islower())
