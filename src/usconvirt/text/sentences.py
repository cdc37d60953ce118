"""Organ sentences of French reports: segment, tag UMLS concepts, assign organs by mention or heading,
then qualify laterality and abnormality. `run_sentences` is what `usconvirt sentences` calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from spacy.tokens import Doc, Span

from usconvirt.errors import InputError
from usconvirt.io import read_table, write_table
from usconvirt.text.context import (
    is_caps_heading,
    laterality,
    opens_section,
    organs_named,
    sentence_label,
)
from usconvirt.text.organs import ORGANS, Organ, organs_for
from usconvirt.text.qualifiers import abnormal
from usconvirt.text.segment import sentence_spans
from usconvirt.text.tagger import Concept, ConceptTagger, TaggerOptions, create_tagger

log = logging.getLogger(__name__)

SENTENCE_COLUMNS = ["exam_id", "start", "end", "text", "organ", "cuis", "laterality", "abnormal"]
SUMMARY_COLUMNS = ["exam_id", "organ", "mentioned", "n_sentences", "laterality", "abnormal"]


@dataclass
class SentenceConfig:
    """How organ sentences are found; the defaults reproduce the paper's rule on the shipped subset."""

    organ: str = "kidney"  # an organ of usconvirt.text.organs.ORGANS, or 'all'
    backend: str = "eds"  # eds (EDS-NLP terminology matching) or quickumls (the paper's tool, [umls] extra)
    umls_dir: str | None = None  # a full UMLS release (MRCONSO.RRF, MRSTY.RRF); None: the shipped subset
    semantic_types: tuple[str, ...] = ("T023",)  # "Body Part, Organ, or Organ Component"
    include_findings: bool = True  # organ-specific findings (hydronephrosis, kidney calculi) select too
    use_headings: bool = True  # a sentence under "REINS :" belongs to the kidney
    term_matcher: str = "exact"  # eds backend: exact (on normalised text) or simstring (fuzzy)
    threshold: float = 0.7  # quickumls / simstring similarity threshold
    window: int = 5  # quickumls / simstring: longest n-gram in tokens
    similarity: str = "jaccard"  # quickumls / simstring: jaccard, dice, cosine or overlap
    min_match_length: int = 3  # quickumls: shortest match in characters
    cache_dir: str | None = None  # QuickUMLS index cache; None: ~/.cache/usconvirt
    batch_size: int = 256  # reports per nlp.pipe batch

    def tagger_options(self) -> TaggerOptions:
        organs_for(self.organ)  # fail early on an unknown organ
        # every organ's findings are tagged, so that a sentence naming another organ inherits no heading
        findings = sorted({c for o in ORGANS.values() for c in o.finding_cuis})
        if not self.include_findings:
            findings = []
        return TaggerOptions(
            backend=self.backend, umls_dir=None if self.umls_dir is None else str(self.umls_dir),
            semantic_types=tuple(self.semantic_types), extra_cuis=tuple(findings),
            term_matcher=self.term_matcher, threshold=self.threshold, window=self.window,
            similarity=self.similarity, min_match_length=self.min_match_length,
            cache_dir=None if self.cache_dir is None else str(self.cache_dir),
        )


@dataclass
class _Scope:
    """The organs (and side) that the last heading named; sentences naming no organ inherit them."""

    organs: tuple[Organ, ...] = ()
    cuis: tuple[str, ...] = ()
    side: str | None = None
    used: bool = False
    inline: bool = False  # opened by an inline label ("RD : 10 cm"): lasts to the end of the line

    def open(self, organs: Sequence[Organ], concepts: Sequence[Concept], side: str | None,
             inline: bool = False) -> None:
        self.organs, self.cuis, self.side, self.used = tuple(organs), _cuis(concepts), side, False
        self.inline = inline


def extract_sentences(exams: pd.DataFrame, config: SentenceConfig | None = None) -> pd.DataFrame:
    """One row per (sentence, organ) selected in the exams' reports; report[start:end] == text."""
    config = config or SentenceConfig()
    for column in ("exam_id", "report"):
        if column not in exams.columns:
            raise InputError(f"missing column '{column}' (expected exam_id and report)", field=column)
    targets = organs_for(config.organ)
    tagger = create_tagger(config.tagger_options())
    reports = [r if isinstance(r, str) else "" for r in exams["report"].tolist()]
    rows: list[dict] = []
    docs = tagger.nlp.pipe(reports, batch_size=config.batch_size)
    for exam_id, doc in zip(exams["exam_id"].astype(str).tolist(), docs, strict=True):
        rows.extend({"exam_id": exam_id, **row} for row in _report_rows(doc, tagger, targets, config))
    table = pd.DataFrame(rows, columns=SENTENCE_COLUMNS)
    log.info("%d sentences selected from %d reports (organ %s, backend %s)",
             len(table), len(reports), config.organ, config.backend)
    return table.astype({"start": "int64", "end": "int64"})


def _report_rows(doc: Doc, tagger: ConceptTagger, targets: Sequence[Organ], config: SentenceConfig
                 ) -> Iterator[dict]:
    """Rows of one report, walking its sentences in order to carry the heading scope."""
    organs = tuple(ORGANS.values())
    report = doc.text  # built on each access: read once
    scope = _Scope()
    previous_end = 0
    sentences = sentence_spans(doc)
    for sent, concepts in zip(sentences, tagger.concepts(sentences), strict=True):
        gap = report[previous_end:sent.start_char]
        if (scope.used and "\n\n" in gap.replace(" ", "")) or (scope.inline and "\n" in gap):
            scope = _Scope()  # a blank line after some content closes a section; a newline an inline label
        previous_end = sent.end_char
        norms = [t.norm_ for t in sent]
        named = organs_named(concepts, organs)
        if config.use_headings and _heading(sent, norms, concepts, named, organs, scope, report):
            continue
        assigned = named or list(scope.organs)
        if not named and scope.organs:
            scope.used = True
        selected = [organ for organ in assigned if organ in targets]
        if not selected:
            continue
        flag = abnormal(norms)
        for organ in selected:
            own = [c for c in concepts if c.cui in organ.cuis | organ.finding_cuis]
            side = laterality(norms, own or concepts, organ)
            if side is None and organ in scope.organs:
                side = scope.side
            yield {
                "start": sent.start_char, "end": sent.end_char, "text": sent.text, "organ": organ.name,
                "cuis": ";".join(_cuis(own) or scope.cuis), "laterality": side or "unspecified",
                "abnormal": "" if flag is None else str(flag).lower(),
            }


def _heading(sent: Span, norms: list[str], concepts: list[Concept], named: list[Organ],
             organs: Sequence[Organ], scope: _Scope, report: str) -> bool:
    """Update the scope from a heading or inline label; True when the sentence is only a heading."""
    label = sentence_label(sent.text, norms)
    caps = label is None and is_caps_heading(sent.text)
    if label is None and not caps:
        return False
    if caps:
        if not named and not opens_section(norms):
            return False  # "RAS", "NORMAL": content in capitals, not a heading
        scope.open(named, concepts, _side(norms, concepts, named))
        return True
    colon = report.index(":", sent.start_char)
    in_label = [c for c in concepts if c.start < colon]
    label_norms = label.words.split()
    label_organs = organs_named(in_label, organs)
    inline = not label.whole_sentence
    if label_organs:
        scope.open(label_organs, in_label, _side(label_norms, in_label, label_organs), inline)
    elif opens_section(label_norms) or (label.whole_sentence and not _side(label_norms, [], list(organs))):
        scope.open([], [], None)  # "Conclusion : ...", "Mensurations :"
    elif (side := _side(label_norms, [], list(scope.organs))) is not None:
        scope.side = side  # "À droite :" under "REINS :"
    return label.whole_sentence


def _side(norms: Sequence[str], concepts: Sequence[Concept], organs: Sequence[Organ]) -> str | None:
    for organ in organs:
        if (side := laterality(norms, concepts, organ)) is not None:
            return side
    return None


def _cuis(concepts: Sequence[Concept]) -> tuple[str, ...]:
    return tuple(sorted({c.cui for c in concepts}))


def exam_summary(sentences: pd.DataFrame, exams: pd.DataFrame, organ: str = "kidney") -> pd.DataFrame:
    """Exam-level weak labels per organ: mentioned, sides covered, any abnormal sentence."""
    names = [o.name for o in organs_for(organ)]
    rows = []
    grouped = {key: group for key, group in sentences.groupby(["exam_id", "organ"], sort=False)}
    for exam_id in exams["exam_id"].astype(str):
        for name in names:
            group = grouped.get((exam_id, name))
            rows.append({"exam_id": exam_id, "organ": name, **_summarise(group)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _summarise(group: pd.DataFrame | None) -> dict:
    if group is None or group.empty:
        return {"mentioned": False, "n_sentences": 0, "laterality": "", "abnormal": ""}
    sides = set(group["laterality"])
    if "both" in sides or {"left", "right"} <= sides:
        coverage = "both"
    else:
        coverage = next((s for s in ("left", "right") if s in sides), "unspecified")
    flags = set(group["abnormal"])
    verdict = "true" if "true" in flags else "false" if "false" in flags else ""
    return {"mentioned": True, "n_sentences": len(group), "laterality": coverage, "abnormal": verdict}


def summary_path(out_path: str | Path) -> Path:
    """Where the exam summary goes: OUT stem + '_summary' + suffix."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}_summary{out_path.suffix}")


def run_sentences(input_path: str | Path, out_path: str | Path, config: SentenceConfig | None = None
                  ) -> tuple[Path, Path]:
    """Read exams (CSV/JSONL/Parquet with exam_id, report), write sentences and the exam summary."""
    config = config or SentenceConfig()
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".csv", ".parquet"):
        raise InputError("output must end in .csv or .parquet", file=out_path)
    exams = read_table(input_path)
    for column in ("exam_id", "report"):
        if column not in exams.columns:
            raise InputError(f"missing column '{column}' (expected exam_id and report)", file=input_path,
                             field=column)
    table = extract_sentences(exams, config)
    summary = exam_summary(table, exams, config.organ)
    write_table(table, out_path)
    return out_path, write_table(summary, summary_path(out_path))
