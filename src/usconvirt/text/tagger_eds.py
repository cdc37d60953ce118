"""Default backend: EDS-NLP terminology matching over the MRCONSO terms (exact on normalised text, or
simstring fuzzy matching)."""

from __future__ import annotations

from bisect import bisect_right

from spacy.tokens import Span

from usconvirt.errors import InputError
from usconvirt.text.tagger import Concept, TaggerOptions, base_nlp
from usconvirt.text.umls import load_terminology


class EdsTagger:
    """`eds.matcher` on the NORM attribute (lowercase, accents removed), one label per CUI."""

    def __init__(self, options: TaggerOptions) -> None:
        terminology = load_terminology(options.umls_dir, semantic_types=options.semantic_types,
                                       extra_cuis=options.extra_cuis)
        self.nlp = base_nlp()
        terms = {cui: list(names) for cui, names in terminology.terms.items()}
        config: dict = {"terms": terms, "attr": "NORM"}
        if options.term_matcher == "simstring":
            config |= {"term_matcher": "simstring",
                       "term_matcher_config": {"threshold": options.threshold, "windows": options.window,
                                               "measure": options.similarity}}
        elif options.term_matcher != "exact":
            raise InputError(f"unknown term matcher '{options.term_matcher}'; expected exact or simstring",
                             field="term_matcher")
        self.nlp.add_pipe("eds.matcher", config=config)

    def concepts(self, sentences: list[Span]) -> list[list[Concept]]:
        """Matches inside each sentence (the matcher ran once on the whole report)."""
        found: list[list[Concept]] = [[] for _ in sentences]
        if not sentences:
            return found
        starts = [s.start for s in sentences]
        for ent in sentences[0].doc.ents:
            i = bisect_right(starts, ent.start) - 1
            if i >= 0 and ent.end <= sentences[i].end:
                found[i].append(Concept(ent.start_char, ent.end_char, ent.label_,
                                        " ".join(t.norm_ for t in ent)))
        return found
