"""What the text components write about each sentence, in one record per sentence.

`doc._.sentences` is the list of `SentenceAnnotation` of a report (set by `usconvirt.sentences`, filled in
by the later components). Each field is also readable as a span attribute of the sentence span
(`doc.spans["sentences"][i]._.organs`, ...): one record read once per component keeps the pipeline fast,
where spaCy span attributes cost a lookup each.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from spacy.tokens import Doc, Span

from usconvirt.text.concepts import Concept


@dataclass
class SentenceAnnotation:
    """One sentence: token and character offsets, normalised tokens, and what each component found."""

    start: int  # token offsets in the doc
    end: int
    start_char: int
    end_char: int
    norms: list[str]  # normalised tokens (lowercase, no accents)
    concepts: list[Concept] = field(default_factory=list)  # concept matcher, landmark uses removed
    landmark: bool = False  # holds a landmark use of a renal word (landmarks.py)
    renal_function: bool = False  # states renal function or a lab value (renal_function.py)
    is_heading: bool = False  # usconvirt.context: a heading alone, not output
    organs: dict[str, str] = field(
        default_factory=dict
    )  # usconvirt.context: organ -> concept/heading/carried
    scope_side: dict[str, str] = field(
        default_factory=dict
    )  # usconvirt.context: side given by the scope's label
    scope_plural: dict[str, str] = field(
        default_factory=dict
    )  # usconvirt.context: "both" of a plural heading
    scope_start: bool = False  # usconvirt.context: first sentence after a scope or paragraph break
    laterality: dict[str, str] = field(default_factory=dict)  # usconvirt.laterality: organ -> side
    abnormal: bool | None = None  # usconvirt.abnormality


def annotation_of(span: Span) -> SentenceAnnotation | None:
    """The record of a sentence span (None for a span that is not one of `doc.spans["sentences"]`)."""
    for sentence in span.doc._.sentences or ():
        if sentence.start == span.start and sentence.end == span.end:
            return sentence
    return None


def _getter(name: str):
    return lambda span: getattr(annotation_of(span), name, None)


if not Doc.has_extension("sentences"):
    Doc.set_extension("sentences", default=None)
for _field in fields(SentenceAnnotation):
    if _field.name not in ("start", "end", "start_char", "end_char") and not Span.has_extension(_field.name):
        Span.set_extension(_field.name, getter=_getter(_field.name))
