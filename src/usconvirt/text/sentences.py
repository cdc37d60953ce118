"""Organ sentences of French reports: run the text pipeline (`tagger.build_nlp`) and write one row per
selected (sentence, organ). `run_sentences` is what `usconvirt sentences` calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
from spacy.tokens import Doc

from usconvirt.errors import InputError
from usconvirt.io import read_table, require_columns, require_ids, write_table
from usconvirt.run_layout import sentences_summary_path
from usconvirt.text.config import SentenceConfig
from usconvirt.text.organs import Organ, organs_for
from usconvirt.text.tagger import build_nlp

log = logging.getLogger(__name__)

SENTENCE_COLUMNS = [
    "exam_id",
    "start",
    "end",
    "text",
    "organ",
    "cuis",
    "laterality",
    "abnormal",
    "selected_by",
]
SUMMARY_COLUMNS = ["exam_id", "organ", "mentioned", "n_sentences", "laterality", "abnormal"]


def extract_sentences(exams: pd.DataFrame, config: SentenceConfig | None = None) -> pd.DataFrame:
    """One row per (sentence, organ) selected in the exams' reports; report[start:end] == text."""
    config = config or SentenceConfig()
    require_columns(exams, ("exam_id", "report"), "exams")
    targets = organs_for(config.organ)
    nlp = build_nlp(config.tagger_options())
    reports = [r if isinstance(r, str) else "" for r in exams["report"].tolist()]
    rows: list[dict] = []
    docs = nlp.pipe(reports, batch_size=config.batch_size)
    for exam_id, doc in zip(exams["exam_id"].astype(str).tolist(), docs, strict=True):
        rows.extend({"exam_id": exam_id, **row} for row in _report_rows(doc, targets))
    table = pd.DataFrame(rows, columns=SENTENCE_COLUMNS)
    log.info(
        "%d sentences selected from %d reports (organ %s, backend %s)",
        len(table),
        len(reports),
        config.organ,
        config.backend,
    )
    return table.astype({"start": "int64", "end": "int64", "abnormal": "boolean"})


def _report_rows(doc: Doc, targets: Sequence[Organ]) -> Iterator[dict]:
    """Rows of one report: the sentences the pipeline assigned to a target organ."""
    names = {organ.name: organ for organ in targets}
    report = None
    for sent in doc._.sentences:
        for name, why in sent.organs.items():
            organ = names.get(name)
            if organ is None:
                continue
            report = doc.text if report is None else report  # doc.text rebuilds the text: once a report
            own = sorted({c.cui for c in sent.concepts if c.cui in organ.cuis | organ.finding_cuis})
            yield {
                "start": sent.start_char,
                "end": sent.end_char,
                "text": report[sent.start_char : sent.end_char],
                "organ": name,
                "cuis": ";".join(own),
                "laterality": sent.laterality[name],
                "abnormal": pd.NA if sent.abnormal is None else sent.abnormal,
                "selected_by": why,
            }


def exam_summary(sentences: pd.DataFrame, exams: pd.DataFrame, organ: str = "kidney") -> pd.DataFrame:
    """Exam-level weak labels per organ: mentioned, sides covered, any abnormal sentence."""
    names = [o.name for o in organs_for(organ)]
    rows = []
    grouped = {key: group for key, group in sentences.groupby(["exam_id", "organ"], sort=False)}
    for exam_id in exams["exam_id"].astype(str):
        for name in names:
            group = grouped.get((exam_id, name))
            rows.append({"exam_id": exam_id, "organ": name, **_summarise(group)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS).astype({"abnormal": "boolean"})


def _summarise(group: pd.DataFrame | None) -> dict:
    if group is None or group.empty:
        return {"mentioned": False, "n_sentences": 0, "laterality": "", "abnormal": pd.NA}
    sides = set(group["laterality"])
    if "both" in sides or {"left", "right"} <= sides:
        coverage = "both"
    else:
        coverage = next((s for s in ("left", "right") if s in sides), "unspecified")
    flags = group["abnormal"].dropna()
    verdict = bool(flags.any()) if len(flags) else pd.NA
    return {"mentioned": True, "n_sentences": len(group), "laterality": coverage, "abnormal": verdict}


def distinct_share(sentences: pd.DataFrame) -> dict[str, float]:
    """Per organ, the share of its sentences that are worded differently (case and spacing aside).

    Where a team's reports stand between varied (near 1) and templated (a hospital's house style, far
    below): contrastive pre-training takes identical texts of other exams as negatives, so a low share
    means many false negatives in a batch.
    """
    normalised = sentences["text"].astype(str).map(lambda t: " ".join(t.split()).casefold())
    by_organ = normalised.groupby(sentences["organ"])
    return {str(organ): texts.nunique() / len(texts) for organ, texts in by_organ}


def write_sentences(exams: pd.DataFrame, out_path: str | Path, config: SentenceConfig | None = None
                    ) -> pd.DataFrame:
    """The sentences stage, for the CLI and the pipeline alike: OUT and OUT_summary, from `exams`."""
    config = config or SentenceConfig()
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".csv", ".parquet"):
        raise InputError("output must end in .csv or .parquet", file=out_path)
    table = extract_sentences(exams, config)
    for organ, share in distinct_share(table).items():
        log.info("%s sentences: %.2f distinct (near 1: varied wording; low: templated)", organ, share)
    write_table(table, out_path)
    write_table(exam_summary(table, exams, config.organ), sentences_summary_path(out_path))
    return table


def read_exams(input_path: str | Path) -> pd.DataFrame:
    """An exams table (CSV/JSONL/Parquet) with `exam_id` (one per row, none empty) and `report`."""
    exams = read_table(input_path)
    require_columns(exams, ("exam_id", "report"), input_path)
    require_ids(exams, "exam_id", input_path)  # rows are keyed by exam_id: offsets of which report?
    return exams


def run_sentences(
    input_path: str | Path, out_path: str | Path, config: SentenceConfig | None = None
) -> tuple[Path, Path]:
    """Read exams (CSV/JSONL/Parquet with exam_id, report), write sentences and the exam summary."""
    write_sentences(read_exams(input_path), out_path, config)
    return Path(out_path), sentences_summary_path(out_path)
