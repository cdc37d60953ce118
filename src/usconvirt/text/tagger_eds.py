"""Default backend: EDS-NLP terminology matching over the MRCONSO terms (exact on normalised text, or
simstring fuzzy matching), then `usconvirt.concepts` hands each sentence its matches."""

from __future__ import annotations

from bisect import bisect_right

from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc

from usconvirt.errors import InputError
from usconvirt.text.concepts import Concept, TaggerOptions
from usconvirt.text.landmarks import set_concepts
from usconvirt.text.umls import load_terminology


def add_concept_matcher(nlp: Pipeline, options: TaggerOptions) -> None:
    """`eds.matcher` on the NORM attribute (lowercase, accents removed), one label per CUI."""
    terminology = load_terminology(
        options.umls_dir, semantic_types=options.semantic_types, extra_cuis=options.extra_cuis
    )
    terms = {cui: list(names) for cui, names in terminology.terms.items()}
    config: dict = {"terms": terms, "attr": "NORM"}
    if options.term_matcher == "simstring":
        config |= {
            "term_matcher": "simstring",
            "term_matcher_config": {
                "threshold": options.threshold,
                "windows": options.window,
                "measure": options.similarity,
            },
        }
    elif options.term_matcher != "exact":
        raise InputError(
            f"unknown term matcher '{options.term_matcher}'; expected exact or simstring",
            field="term_matcher",
        )
    nlp.add_pipe("eds.matcher", config=config)
    nlp.add_pipe("usconvirt.concepts", config={"keep_renal_function": options.keep_renal_function})


class SentenceConcepts:
    """`usconvirt.concepts`: `span._.concepts` of each sentence from `doc.ents` (the matcher ran once on
    the whole report), landmark uses removed."""

    def __init__(
        self,
        nlp: Pipeline | None = None,
        name: str = "usconvirt.concepts",
        *,
        keep_renal_function: bool = False,
    ):
        self.name = name
        self.keep_renal_function = keep_renal_function

    def __call__(self, doc: Doc) -> Doc:
        sentences = doc._.sentences
        found: list[list[Concept]] = [[] for _ in sentences]
        starts = [s.start for s in sentences]
        for ent in doc.ents:
            i = bisect_right(starts, ent.start) - 1
            if i >= 0 and ent.end <= sentences[i].end:
                found[i].append(
                    Concept(ent.start_char, ent.end_char, ent.label_, " ".join(t.norm_ for t in ent))
                )
        for sentence, concepts in zip(sentences, found, strict=True):
            set_concepts(doc, sentence, concepts, self.keep_renal_function)
        return doc


registry.factory.register(
    "usconvirt.concepts", assigns=["span._.concepts", "span._.landmark", "span._.renal_function"]
)(SentenceConcepts)
