"""Normal/abnormal of organ sentences: the `usconvirt.findings` and `usconvirt.abnormality` components.

`span._.abnormal` (True / False / None) on every sentence about an organ: True when a finding is asserted
("kyste de 15 mm"), False when its findings are negated or it states normality ("pas de dilatation",
"taille normale"), None when it says neither ("mesure 11 cm") or asks the exam's question ("Indication :
suivi de greffon rénal"). Two ways to decide negation:
- `rules` (default): `qualifiers.abnormal`, a negation scope over normalised tokens written for reports;
- `eds`: `usconvirt.findings` marks each finding and normality word as a span of `doc.spans["findings"]`,
  EDS-NLP's `eds.negation` and `eds.hypothesis` qualify them (`span._.negation`, `span._.hypothesis`),
  and a finding neither negated nor hypothetical is asserted.
bench/text_bench.py measures both on the gold set (docs/text.md gives the figures).
"""

from __future__ import annotations

from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc, Span

from usconvirt.text.annotations import SentenceAnnotation
from usconvirt.text.qualifiers import NORMAL_TOKENS, abnormal, finding_at

FINDINGS = "findings"  # doc.spans key of the finding and normality words
# Labels of the clinical question ("Indication : suivi de greffon rénal"): the sentence asks, it does not
# report a finding, so it is neither normal nor abnormal.
QUESTION_LABELS = frozenset(
    {
        "indication",
        "indications",
        "renseignements",
        "motif",
        "antecedent",
        "antecedents",
        "contexte",
        "demande",
    }
)
LABEL_REACH = 4  # tokens before the colon of such a label
SAME_ASPECT = frozenset({"idem", "meme", "superposable", "identique", "similaire"})


class FindingsComponent:
    """`usconvirt.findings`: `doc.spans["findings"]`, finding (label 'finding') and normality ('normal')
    words of the sentences about an organ, for EDS-NLP's qualifiers."""

    def __init__(self, nlp: Pipeline | None = None, name: str = "usconvirt.findings"):
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for sent in doc._.sentences:
            if not sent.organs:
                continue
            norms = sent.norms
            for i, token in enumerate(norms):
                if length := finding_at(norms, i):
                    spans.append(Span(doc, sent.start + i, sent.start + i + length, label="finding"))
                elif token in NORMAL_TOKENS:
                    spans.append(Span(doc, sent.start + i, sent.start + i + 1, label="normal"))
        doc.spans[FINDINGS] = spans
        return doc


class AbnormalityComponent:
    """`usconvirt.abnormality`: `span._.abnormal` of the sentences about an organ."""

    def __init__(
        self, nlp: Pipeline | None = None, name: str = "usconvirt.abnormality", *, qualifier: str = "rules"
    ):
        self.name = name
        self.qualifier = qualifier

    def __call__(self, doc: Doc) -> Doc:
        sentences = [s for s in doc._.sentences if s.organs and not asks_question(s.norms)]
        if self.qualifier == "rules":
            for sent in sentences:
                sent.abnormal = abnormal(sent.norms)
        else:
            findings = list(doc.spans[FINDINGS])
            for sent in sentences:
                sent.abnormal = qualified_abnormal([f for f in findings if sent.start <= f.start < sent.end])
        copy_same_aspect(sentences)
        return doc


def copy_same_aspect(sentences: list[SentenceAnnotation]) -> None:
    """ "Rein G : idem.", "Même aspect à gauche.": an undecided sentence saying so takes the verdict of the
    previous sentence about the same organ."""
    previous: dict[str, bool | None] = {}
    for sent in sentences:
        if sent.abnormal is None and any(token in SAME_ASPECT for token in sent.norms):
            sent.abnormal = next((previous[o] for o in sent.organs if previous.get(o) is not None), None)
        for organ in sent.organs:
            previous[organ] = sent.abnormal


def asks_question(norms: list[str]) -> bool:
    """Whether the sentence is the exam's clinical question ("Indication : ...", "Motif : ...")."""
    head = norms[:LABEL_REACH]
    return ":" in head and any(token in QUESTION_LABELS for token in head[: head.index(":")])


def qualified_abnormal(findings: list[Span]) -> bool | None:
    """True/False/None from EDS-qualified finding and normality spans of one sentence."""
    asserted = any(f.label_ == "finding" and not f._.negation and not f._.hypothesis for f in findings)
    if asserted:
        return True
    if any(f.label_ == "finding" or not f._.negation for f in findings):
        return False
    return None


registry.factory.register("usconvirt.findings", assigns=["doc.spans"])(FindingsComponent)
registry.factory.register("usconvirt.abnormality", assigns=["span._.abnormal"])(AbnormalityComponent)
