"""The text pipeline: EDS-NLP components in order, with the concept matcher of the chosen backend.

    eds.normalizer -> eds.sentences -> usconvirt.sentences -> concept matcher (backend) -> usconvirt.context
    -> [usconvirt.findings -> eds.negation -> eds.hypothesis] -> usconvirt.abnormality -> usconvirt.laterality

`BACKENDS` maps a backend name to the `add_concept_matcher(nlp, options)` that adds its matcher; the
backend modules import nothing from this one (QuickUMLS itself loads only when its matcher is built).
"""

from __future__ import annotations

from functools import lru_cache

from edsnlp.core.pipeline import Pipeline

# context and laterality register the usconvirt.* factories that build_nlp adds by name
from usconvirt.errors import InputError
from usconvirt.text import abnormality, context, laterality, tagger_eds, tagger_quickumls  # noqa: F401
from usconvirt.text.concepts import TaggerOptions
from usconvirt.text.segment import base_nlp

BACKENDS = {
    "eds": tagger_eds.add_concept_matcher,  # eds.matcher over the MRCONSO terms (default)
    "quickumls": tagger_quickumls.add_concept_matcher,  # the paper's tool, [umls] extra
}
QUALIFIERS = ("rules", "eds")


@lru_cache(maxsize=4)
def build_nlp(options: TaggerOptions) -> Pipeline:
    """Build (once per options) the whole text pipeline; `nlp(report)._.sentences` carry the results."""
    if options.backend not in BACKENDS:
        raise InputError(
            f"unknown backend '{options.backend}'; expected one of {sorted(BACKENDS)}", field="backend"
        )
    if options.qualifier not in QUALIFIERS:
        raise InputError(
            f"unknown qualifier '{options.qualifier}'; expected one of {list(QUALIFIERS)}", field="qualifier"
        )
    nlp = base_nlp()
    BACKENDS[options.backend](nlp, options)
    nlp.add_pipe(
        "usconvirt.context",
        config={"use_headings": options.use_headings, "carry_subject": options.carry_subject},
    )
    if options.qualifier == "eds":
        nlp.add_pipe("usconvirt.findings")
        for qualifier in ("eds.negation", "eds.hypothesis"):
            nlp.add_pipe(qualifier, config={"span_getter": {abnormality.FINDINGS: True}})
    nlp.add_pipe("usconvirt.abnormality", config={"qualifier": options.qualifier})
    nlp.add_pipe("usconvirt.laterality")
    return nlp
