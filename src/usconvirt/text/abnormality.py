"""Normal/abnormal of organ sentences: the `usconvirt.findings` and `usconvirt.abnormality` components.

`span._.abnormal` (True / False / None) on every sentence about an organ: True when a finding is asserted
("kyste de 15 mm"), False when its findings are negated or it states normality ("pas de dilatation",
"taille normale"), None when it says neither ("mesure 11 cm") or asks the exam's question ("Indication :
suivi de greffon rénal"). Two ways to decide negation:
- `rules` (default): `qualifiers.abnormal`, a negation scope over normalised tokens written for reports;
  in a kidney sentence, a finding in a segment naming another organ and no kidney word is left out
  (`attribution.py`: "les reins sont normaux, avec une masse latéro-utérine");
- `eds`: `usconvirt.findings` marks each finding and normality word as a span of `doc.spans["findings"]`,
  EDS-NLP's `eds.negation` and `eds.hypothesis` qualify them (`span._.negation`, `span._.hypothesis`),
  and a finding neither negated nor hypothetical is asserted.
Then, across sentences (both ways):
- a follow-up whose pronoun stands for the previous sentence's finding, not for the organ, describes
  that finding ("Kyste cortical de 2 cm. Il est anéchogène." / "Le rein droit présente deux kystes. Ils
  sont à paroi fine."): it is abnormal when that sentence was, normal when it says the finding has gone;
- an undecided sentence that says the organ is unchanged ("idem", "même aspect", "stable", "inchangé")
  takes the previous verdict for the organ;
- an undecided sentence taking up a lesion with a demonstrative ("Ce processus mesure 60 mm") describes
  it: abnormal, unless it says the lesion has gone.
bench/text_bench.py measures both on the gold set (docs/text.md gives the figures).
"""

from __future__ import annotations

from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc, Span

from usconvirt.text.annotations import SentenceAnnotation
from usconvirt.text.attribution import foreign_tokens
from usconvirt.text.context import PRONOUNS, UNCHANGED_WORDS, impersonal
from usconvirt.text.laterality import laterality
from usconvirt.text.narrative import continues_lesion
from usconvirt.text.organs import ORGANS
from usconvirt.text.qualifiers import NORMAL_TOKENS, abnormal, finding_at, reports_gone

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
SAME_ASPECT = UNCHANGED_WORDS | {"idem", "meme", "superposables", "identique", "identiques", "similaire"}
# The kidney is masculine ("le rein", "le greffon"), so a feminine pronoun stands for a finding ("une
# lésion", "la dilatation"); a masculine one does when its number differs from every kidney noun of its
# antecedent ("Le rein droit présente deux kystes. Ils ...") or that sentence names none ("Kyste de
# 2 cm. Il ...", "RD : kyste de 2 cm. Il ...": a label's words are not the antecedent).
FEMININE_PRONOUNS = frozenset({"elle", "elles", "celle-ci", "celles-ci"})
PLURAL_PRONOUNS = frozenset({"ils", "ceux-ci"})
SINGULAR_ORGAN_NOUNS = frozenset({"rein", "greffon", "transplant", "rd", "rg"})
PLURAL_ORGAN_NOUNS = frozenset({"reins", "greffons"})


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
                foreign = foreign_tokens(sent.norms) if "kidney" in sent.organs else frozenset()
                sent.abnormal = abnormal(sent.norms, foreign)
        else:
            findings = list(doc.spans[FINDINGS])
            for sent in sentences:
                sent.abnormal = qualified_abnormal([f for f in findings if sent.start <= f.start < sent.end])
        for sent in sentences:
            if sent.abnormal is None and continues_lesion(sent.norms):
                sent.abnormal = not reports_gone(sent.norms)  # "Ce processus mesure 60 mm": the lesion
        carry_finding(doc._.sentences)
        copy_same_aspect(sentences)
        return doc


def carry_finding(sentences: list[SentenceAnnotation]) -> None:
    """A follow-up whose pronoun stands for the previous sentence's finding is abnormal like it, or
    normal when it says that finding has gone ("Elle disparaît après la miction"). The pronoun's
    antecedent is the last sentence not opening on a pronoun ("Les reins sont gros. Ils sont
    hyperéchogènes. Ils mesurent 14 cm.": the kidneys, so the last sentence stays a measurement)."""
    antecedent: list[str] = []
    for previous, sent in zip(sentences, sentences[1:], strict=False):
        if not opens_on_pronoun(previous.norms):
            antecedent = previous.norms
        if (
            previous.abnormal is True
            and sent.abnormal is not True
            and set(sent.organs) & set(previous.organs)
            and pronoun_for_finding(sent.norms, antecedent)
        ):
            sent.abnormal = False if reports_gone(sent.norms) else True


def opens_on_pronoun(norms: list[str]) -> bool:
    return bool(norms) and norms[0] in PRONOUNS and not impersonal(norms)


def pronoun_for_finding(norms: list[str], antecedent: list[str]) -> bool:
    """Whether the sentence opens on a pronoun that stands for a finding of its antecedent sentence."""
    if not opens_on_pronoun(norms):
        return False
    if norms[0] in FEMININE_PRONOUNS:
        return True
    nouns = PLURAL_ORGAN_NOUNS if norms[0] in PLURAL_PRONOUNS else SINGULAR_ORGAN_NOUNS
    return not nouns & set(_after_label(antecedent))


def _after_label(norms: list[str]) -> list[str]:
    """The words after a label's colon ("RD : kyste de 12 mm. Il ...": the pronoun stands for the cyst)."""
    head = norms[:LABEL_REACH]
    return norms[head.index(":") + 1 :] if ":" in head else norms


def copy_same_aspect(sentences: list[SentenceAnnotation]) -> None:
    """ "Rein G : idem.", "Même aspect à gauche.", "Aspect stable.": an undecided sentence saying so takes
    the verdict of the description it refers to, the organ's sentences since the last one naming a side
    ("RD : kyste de 2 cm. Pas de dilatation. RG : idem." is abnormal): abnormal if one of them is, else
    normal if one of them is."""
    if not any(sent.abnormal is None and SAME_ASPECT.intersection(sent.norms) for sent in sentences):
        return  # most reports: no side checks to pay for
    block: dict[str, list[bool | None]] = {}  # organ -> verdicts since its last sentence naming a side
    for sent in sentences:
        if sent.abnormal is None and any(token in SAME_ASPECT for token in sent.norms):
            verdicts = [v for o in sent.organs for v in block.get(o, ())]
            sent.abnormal = True if True in verdicts else (False if False in verdicts else None)
        for name in sent.organs:
            organ = ORGANS[name]
            if organ.paired and laterality(sent.norms, sent.concepts, organ) is not None:
                block[name] = []
            block.setdefault(name, []).append(sent.abnormal)


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
