"""Optional backend `[umls]`: QuickUMLS, the paper's tagger, with an index built from MRCONSO/MRSTY.

The index is built from Python (French, lowercased, unicode-normalised) into a cache directory keyed
by the hash of the RRF files; NLTK's French stop words are written beside it so nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc, Span

from usconvirt.errors import InputError
from usconvirt.text.concepts import Concept, TaggerOptions
from usconvirt.text.french_stopwords import write_nltk_stopwords
from usconvirt.text.landmarks import set_concepts
from usconvirt.text.umls import cache_root, load_terminology, read_semantic_types, rrf_hash, rrf_paths

log = logging.getLogger(__name__)
DATABASE_BACKEND = "unqlite"  # ships as a wheel; leveldb needs system headers


def _import_quickumls():
    try:
        import nltk
        import quickumls
    except ImportError as err:
        raise InputError(
            "the quickumls backend needs the [umls] extra: pip install 'usconvirt[umls]'", field="backend"
        ) from err
    return nltk, quickumls


def quickumls_index(umls_dir: str | Path | None, cache_dir: str | Path | None) -> Path:
    """Build (once) the QuickUMLS index of a UMLS directory; return its path."""
    _, quickumls = _import_quickumls()
    from quickumls.install import extract_from_mrconso, parse_and_encode_ngrams

    index = cache_root(cache_dir) / "quickumls" / rrf_hash(umls_dir)
    if (index / "complete.flag").exists():
        return index
    mrconso, mrsty = rrf_paths(umls_dir)
    log.info("building the QuickUMLS index of %s in %s", mrconso.parent, index)
    tmp = index.with_name(index.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for flag in ("lowercase.flag", "normalize-unicode.flag"):
        (tmp / flag).touch()
    (tmp / "language.flag").write_text("FRE")
    (tmp / "database_backend.flag").write_text(DATABASE_BACKEND)
    opts = SimpleNamespace(language="FRE", lowercase=True, normalize_unicode=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the installer prints progress
        terms = extract_from_mrconso(str(mrconso), str(mrsty), opts)
        parse_and_encode_ngrams(
            terms,
            str(tmp / "umls-simstring.db"),
            str(tmp / "cui-semtypes.db"),
            database_backend=DATABASE_BACKEND,
        )
    (tmp / "complete.flag").touch()
    if index.exists():
        shutil.rmtree(index)
    os.replace(tmp, index)
    return index


def short_terms(options: TaggerOptions) -> dict[str, str]:
    """Normalised one-word terms shorter than `min_match_length` ("RD", "RG", "VB") -> CUI.

    QuickUMLS cannot match them by design; report abbreviations are matched exactly instead, so that
    telegraphic reports ("RD : 10 cm") read the same with both backends.
    """
    terminology = load_terminology(
        options.umls_dir, semantic_types=options.semantic_types, extra_cuis=options.extra_cuis
    )
    return {
        term.lower(): cui
        for cui, terms in terminology.terms.items()
        for term in terms
        if len(term) < options.min_match_length and " " not in term
    }


def add_concept_matcher(nlp: Pipeline, options: TaggerOptions) -> None:
    """QuickUMLS matching inside each sentence, as the `usconvirt.quickumls` component."""
    nlp.add_pipe(QuickUMLSMatcher(options))


class QuickUMLSMatcher:
    """`usconvirt.quickumls`: QuickUMLS approximate matching (threshold, window, similarity) inside each
    EDS-NLP sentence; sets `span._.concepts` (landmark uses removed), as `usconvirt.concepts` does."""

    name = "usconvirt.quickumls"

    def __init__(self, options: TaggerOptions) -> None:
        nltk, quickumls = _import_quickumls()
        index = quickumls_index(options.umls_dir, options.cache_dir)
        nltk_data = cache_root(options.cache_dir) / "nltk_data"
        write_nltk_stopwords(nltk_data)
        if str(nltk_data) not in nltk.data.path:
            nltk.data.path.insert(0, str(nltk_data))
        self.matcher = quickumls.QuickUMLS(
            str(index),
            threshold=options.threshold,
            window=options.window,
            similarity_name=options.similarity,
            min_match_length=options.min_match_length,
            spacy_component=True,
        )
        self.extra_cuis = frozenset(options.extra_cuis)
        # QuickUMLS filters by type only; `_accepted` then keeps the finding CUIs among their types' concepts
        types = read_semantic_types(rrf_paths(options.umls_dir)[1])
        self.matcher.accepted_semtypes = set(options.semantic_types).union(
            *(types.get(cui, ()) for cui in self.extra_cuis)
        )
        self.semantic_types = frozenset(options.semantic_types)
        self.short_terms = short_terms(options)
        self.keep_renal_function = options.keep_renal_function

    def __call__(self, doc: Doc) -> Doc:
        for sentence in doc._.sentences:
            concepts = self._sentence_concepts(doc[sentence.start : sentence.end])
            set_concepts(doc, sentence, concepts, self.keep_renal_function)
        return doc

    def _sentence_concepts(self, sentence: Span) -> list[Concept]:
        found = []
        # `_match` takes a parsed span: QuickUMLS's own `match` would load a spaCy model we do not ship
        for candidates in self.matcher._match(sentence, best_match=True):
            accepted = [c for c in candidates if self._accepted(c)]
            if not accepted:
                continue
            best = accepted[0]
            span = sentence.doc.char_span(best["start"], best["end"], alignment_mode="expand")
            found.append(Concept(best["start"], best["end"], best["cui"], " ".join(t.norm_ for t in span)))
        found.extend(
            Concept(t.idx, t.idx + len(t), self.short_terms[t.norm_], t.norm_)
            for t in sentence
            if t.norm_ in self.short_terms
        )
        return found

    def _accepted(self, candidate: dict) -> bool:
        return candidate["cui"] in self.extra_cuis or bool(set(candidate["semtypes"]) & self.semantic_types)
