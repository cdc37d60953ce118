"""Sentence context: which organ a sentence is about when it names none, and the `usconvirt.context`
component.

Rules, in report order:
1. **Concept.** A sentence naming an organ (an anatomical or finding CUI of `organs.py`) is about it.
2. **Heading.** "REINS :", "Rein droit :", a capitals heading ("REINS"), or a sentence ending in a colon
   that names an organ ("Les reins présentent :") opens a scope: later sentences naming no organ
   (dash-list items included) belong to it. An inline label ("RD : 10 cm") opens one to the end of its
   line, after which the heading's scope goes on if it names the same organ ("- RD :" under "REINS :").
   A side label alone on its line ("À droite :", "Droit :") sets the scope's side. A section label
   ("Conclusion :", "Indication :", ...), a blank line after some content, or the next heading closes it.
3. **Carried subject.** Outside a scope, a sentence naming no organ continues the previous sentence
   when that one was about a single organ, nothing closed the paragraph (blank line, heading), and the
   sentence says something about an organ (a finding or normality word, a number, a side, a pronoun,
   a comparison such as "stable") without naming another topic (`OTHER_TOPICS`: effusion, lymph nodes,
   the exam itself, ...): "Rein droit de 11 cm. Pas de lithiase." A sentence opening on a personal
   pronoun (not an impersonal "il existe", "il est conseillé de") always carries it. Only a report line
   carries (`narrative.report_line`: short, present tense, no lab value, not about the patient); in
   prose a sentence must name its organ, or take up a lesion with a demonstrative ("Ce processus ..."),
   which reaches back to the paragraph's last organ named alone. The carried sentence passes the
   subject on.
4. A sentence holding a landmark (`landmarks.py`), a renal-function statement (`renal_function.py`) or a
   bladder / post-void residual word (`UNRENAL_TOPICS`) inherits no kidney by rule 2 or 3.
5. **Title.** The report's first sentence, when it names the exam ("Échographie rénale et vésicale",
   "Examen doppler des artères rénales"), is no heading ("Examen des reins :") and reports no finding,
   normality or number, is no organ's.
6. **Kidney-part words** ("cortex", "médullaire", "sinus", `kidney_parts.py`) name the kidney only in a
   kidney scope, after a kidney sentence, or in a present-tense sentence naming no other organ; never
   beside another site (brain, spine, bone...). **The urinary tract as a whole** ("pas de dilatation des
   voies urinaires") is the kidney's.

Attributes (of each `annotations.SentenceAnnotation`, also `span._.*` of the sentence spans): `organs`
(dict organ name -> why: "concept", "heading" or "carried"),
`is_heading` (a heading alone, not output), `scope_side` / `scope_plural` (dict organ -> side given by
the scope's label / by its plural heading), `scope_start` (the first sentence after a scope or paragraph
break: `usconvirt.laterality` forgets the last side there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc

from usconvirt.text.annotations import SentenceAnnotation
from usconvirt.text.attribution import names_other_organ
from usconvirt.text.concepts import Concept
from usconvirt.text.kidney_parts import ambiguous_part, names_urinary_tract, other_site
from usconvirt.text.laterality import laterality
from usconvirt.text.narrative import continues_lesion, narrative_tense, report_line
from usconvirt.text.organs import ORGANS, Organ
from usconvirt.text.qualifiers import FINDING_PREFIXES, NEGATION_TOKENS, NORMAL_TOKENS

# A heading line ("REINS :", "- Rein droit :") or an inline label ("Rein droit : 11 cm").
LABEL = re.compile(r"^\s*[-•*·]?\s*([^:.\n]{1,40}?)\s*:\s*(.*)$", re.DOTALL)
# Labels that open a new section without naming an organ: they end the current heading's scope.
SECTION_WORDS = frozenset(
    {
        "indication",
        "indications",
        "technique",
        "conclusion",
        "conclusions",
        "resultat",
        "resultats",
        "renseignements",
        "motif",
        "antecedents",
        "examen",
        "commentaire",
        "commentaires",
        "avis",
        "impression",
        "synthese",
        "compte",
        "echographie",
        "clinique",
        "contexte",
        "histoire",
        "demande",
        "protocole",
        "materiel",
        "description",
        "abdomen",
        "pelvis",
        "autres",
        "divers",
        "remarque",
        "comparaison",
    }
)
CAPS_HEADING_TOKENS = 12  # a capitals heading has at most 40 letters
# Words of a sentence about something else than the previous sentence's organ: it carries no subject.
OTHER_TOPICS = frozenset(
    {
        "epanchement",
        "epanchements",
        "ascite",
        "liquide",
        "adenopathie",
        "adenopathies",
        "ganglion",
        "ganglions",
        "ganglionnaire",
        "ganglionnaires",
        "intestin",
        "intestinal",
        "intestinale",
        "intestinales",
        "douglas",
        "peritoine",
        "peritoneal",
        "peritoneale",
        "intraperitoneal",
        "abdomen",
        "abdominal",
        "abdominale",
        "abdominaux",
        "pelvis",
        "pelvien",
        "pelvienne",
        "digestif",
        "digestive",
        "digestifs",
        "digestives",
        "anses",
        "gaz",
        "examen",
        "reste",
        "ailleurs",
        "autre",
        "autres",
        "patient",
        "patiente",
        "scanner",
        "tdm",
        "irm",
        "uroscanner",
        "hernie",
        "appendice",
        "colon",
        "estomac",
        "ovaire",
        "ovaires",
        "surrenale",
        "surrenales",
        "surrenalienne",
        "surrenaliennes",
        "thyroide",
        "veine",
        "porte",
        "portal",
        "vci",
        "cave",
        "vaisseaux",
        "mesenterique",
        "recommande",
        "recommandee",
        "conseille",
        "controle",
        "surveillance",
        "confronter",
        "avis",
    }
)
# Bladder and voiding words: a post-void residual or a bladder statement is never the kidney's, even on
# the line of a "Rein droit : ..." label or after a kidney sentence.
UNRENAL_TOPICS = frozenset(
    {"residu", "mictionnel", "mictionnelle", "postmictionnel", "vesical", "vesicale", "vesicaux"}
)
TITLE_WORDS = frozenset({"echographie", "examen", "exploration", "doppler", "echo"})
# Comparisons with the last exam ("Aspect stable."): they go on about the same organ, and say its verdict
# has not changed (text/abnormality.py).
UNCHANGED_WORDS = frozenset(
    {"stable", "stables", "inchange", "inchangee", "inchanges", "inchangees", "superposable", "stationnaire"}
)
# Words that tie a sentence to the previous one's organ: pronouns, "le droit", "idem", "stable".
FOLLOW_UP_WORDS = UNCHANGED_WORDS | frozenset(
    {
        "il",
        "elle",
        "ils",
        "elles",
        "celui-ci",
        "celle-ci",
        "ceux-ci",
        "idem",
        "droit",
        "droite",
        "gauche",
        "controlateral",
        "mesure",
        "mesurant",
        "taille",
    }
)


# Pronouns opening a follow-up sentence; "Il existe", "il n'y a pas", "il s'agit", "il est conseillé de"
# are impersonal and stand for nothing.
PRONOUNS = frozenset({"il", "elle", "ils", "elles", "celui-ci", "celle-ci", "ceux-ci", "celles-ci"})
IMPERSONAL_AFTER = frozenset({"y", "existe", "s'agit", "faut", "convient", "semble", "parait"})


def impersonal(norms: Sequence[str]) -> bool:
    """ "Il existe ...", "Il n'y a pas ...", "Il est conseillé de ..."."""
    following = norms[1:4]
    return bool(following) and (
        following[0] in IMPERSONAL_AFTER
        or (following[0] == "n'" and len(following) > 1 and following[1] in IMPERSONAL_AFTER)
        or (following[0] == "est" and len(following) > 2 and following[2] in ("de", "d'", "que", "qu'"))
    )


@dataclass
class Scope:
    """The organs (and side) a heading named; sentences naming no organ inherit them."""

    organs: tuple[Organ, ...] = ()
    side: str | None = None
    plural: str | None = None  # "both" under a plural heading ("REINS :")
    used: bool = False
    inline: bool = False  # opened by an inline label ("RD : 10 cm"): lasts to the end of the line
    parent: Scope | None = None  # the heading's scope an inline label interrupts ("REINS :" / "- RD : 11 cm")


@dataclass
class Walk:
    """What the walk through one report carries from a sentence to the next."""

    scope: Scope = field(default_factory=Scope)
    subject: tuple[str, ...] = ()  # the previous sentence's organs, for rule 3
    lesion_subject: tuple[str, ...] = ()  # the organ the paragraph last named alone, for "Ce processus ..."
    break_: bool = True  # a scope or paragraph break since the last sentence


def organs_named(
    concepts: Iterable[Concept], organs: Sequence[Organ] = tuple(ORGANS.values())
) -> list[Organ]:
    """Organs with at least one anatomical or finding CUI among the concepts."""
    cuis = {c.cui for c in concepts}
    return [organ for organ in organs if cuis & (organ.cuis | organ.finding_cuis)]


def sentence_label(text: str, norms: Sequence[str]) -> tuple[str, bool] | None:
    """(normalised label words, whether the label is alone on its sentence) if the sentence has a label."""
    match = LABEL.match(text)
    if match is None:
        return None
    label_words = match.group(1).split()
    if not label_words or len(label_words) > 6:
        return None
    colon = norms.index(":") if ":" in norms else len(norms)
    return " ".join(norms[:colon]).strip("-•*· "), not match.group(2).strip()


def is_caps_heading(text: str) -> bool:
    """A short all-capitals line without a final period ("REINS", "FOIE ET VOIES BILIAIRES")."""
    letters = [c for c in text if c.isalpha()]
    return 2 <= len(letters) <= 40 and text.isupper() and not text.rstrip().endswith(".")


def opens_section(words: Sequence[str]) -> bool:
    """Whether a heading's normalised words start a non-organ section ("Conclusion :", "Indication :")."""
    return any(word in SECTION_WORDS for word in words)


def _specific_other(norms: Sequence[str], i: int) -> bool:
    """ "Pas d'autre lithiase" goes on about the organ; "pas d'autre anomalie" closes the topic."""
    following = norms[i + 1] if i + 1 < len(norms) else ""
    return (
        norms[i] in ("autre", "autres")
        and following.startswith(FINDING_PREFIXES)
        and not following.startswith(("anomal", "anormal", "lesion"))
    )


def carries_subject(norms: Sequence[str]) -> bool:
    """Whether a sentence naming no organ reads as a follow-up of the previous one (rule 3)."""
    if norms and norms[0] in PRONOUNS and not impersonal(norms):
        return True  # "Elle est stable par rapport au dernier contrôle.": its subject is the last one's
    if any(token in OTHER_TOPICS and not _specific_other(norms, i) for i, token in enumerate(norms)):
        return False
    return any(
        token.startswith(FINDING_PREFIXES)
        or token in NORMAL_TOKENS
        or token in FOLLOW_UP_WORDS
        or token in NEGATION_TOKENS
        or token[:1].isdigit()
        for token in norms
    )


def is_title(norms: Sequence[str]) -> bool:
    """Rule 5: an exam title, to be checked on the report's first sentence only."""
    return (
        bool(norms)
        and norms[0] in TITLE_WORDS
        and ":" not in norms
        and not any(
            token.startswith(FINDING_PREFIXES) or token in NORMAL_TOKENS or token[:1].isdigit()
            for token in norms
        )
    )


def side_of(norms: Sequence[str], concepts: Sequence[Concept], organs: Sequence[Organ]) -> str | None:
    """The side a label names for the first paired organ among `organs`."""
    for organ in organs:
        if (side := laterality(norms, concepts, organ)) in ("left", "right", "both"):
            return side
    return None


def _names(organs: Sequence[Organ]) -> set[str]:
    return {organ.name for organ in organs}


class ContextComponent:
    """`usconvirt.context`: organs of every sentence by concept, heading or carried subject."""

    def __init__(
        self,
        nlp: Pipeline | None = None,
        name: str = "usconvirt.context",
        *,
        use_headings: bool = True,
        carry_subject: bool = True,
    ):
        self.name = name
        self.use_headings = use_headings
        self.carry_subject = carry_subject
        self.organs = tuple(ORGANS.values())

    def __call__(self, doc: Doc) -> Doc:
        report = doc.text
        walk = Walk()
        previous_end = 0
        for i, sent in enumerate(doc._.sentences):
            if i == 0 and is_title(sent.norms):
                previous_end = sent.end_char
                continue
            gap = report[previous_end : sent.start_char]
            previous_end = sent.end_char
            if "\n\n" in gap.replace(" ", ""):
                walk.break_, walk.subject, walk.lesion_subject = (
                    True,
                    (),
                    (),
                )  # a blank line ends the paragraph
                if walk.scope.used:
                    walk.scope = Scope()  # ... and, after some content, the heading's section
            if walk.scope.inline and "\n" in gap:
                walk.scope = walk.scope.parent or Scope()  # the line ends an inline label's scope only
            self._sentence(sent, report, walk)
        return doc

    def _sentence(self, sent: SentenceAnnotation, report: str, walk: Walk) -> None:
        norms = sent.norms
        concepts = sent.concepts
        named = organs_named([c for c in concepts if not ambiguous_part(c)], self.organs)
        parts_only = not named and bool(organs_named(concepts, self.organs))  # "le cortex", "médullaire"
        if self.use_headings and self._heading(sent, report, named, walk):
            sent.is_heading = True
            self._set(sent, {}, walk)
            return
        organs = {organ.name: "concept" for organ in named}
        scope = walk.scope
        subject = walk.subject or walk.lesion_subject
        if parts_only:
            # a kidney-part word names the kidney in a kidney scope, after a kidney sentence, or in a
            # report's present tense naming no other organ ("Sinus normaux, pyramides bien visibles.");
            # in a narrative past tense it needs that context
            inherited = _names(scope.organs) if scope.organs else set(walk.subject)
            if not narrative_tense(norms) and not names_other_organ(norms):
                inherited.add("kidney")
            if "kidney" in inherited and not other_site(norms):
                organs = {"kidney": "heading" if scope.organs else "concept"}
        elif "kidney" not in organs and names_urinary_tract(norms):
            organs["kidney"] = "concept"  # "pas de dilatation des voies urinaires"
        elif not named and scope.organs:
            organs = {organ.name: "heading" for organ in scope.organs}
            scope.used = True
        elif not named and self.carry_subject and len(subject) == 1 and self._carries(norms, walk):
            organs = {subject[0]: "carried"}
        if sent.landmark or sent.renal_function or UNRENAL_TOPICS.intersection(norms):
            organs = {name: why for name, why in organs.items() if why == "concept" or name != "kidney"}
        self._set(sent, organs, walk)
        walk.subject = tuple(organs)
        if len(named) == 1:
            walk.lesion_subject = (named[0].name,)
        elif named:
            walk.lesion_subject = ()

    @staticmethod
    def _carries(norms: Sequence[str], walk: Walk) -> bool:
        """Rule 3: a report line continuing the previous sentence's organ, or, in prose too, a sentence
        taking up a lesion of the paragraph's last organ ("Ce processus est peu rehaussé")."""
        if continues_lesion(norms):
            return True
        return bool(walk.subject) and report_line(norms) and carries_subject(norms)

    @staticmethod
    def _set(sent: SentenceAnnotation, organs: dict[str, str], walk: Walk) -> None:
        scope = walk.scope
        in_scope = {organ.name for organ in scope.organs}
        sent.organs = organs
        if scope.side:
            sent.scope_side = {name: scope.side for name in organs if name in in_scope}
        if scope.plural:
            sent.scope_plural = {name: scope.plural for name in organs if name in in_scope}
        sent.scope_start = walk.break_
        walk.break_ = False

    def _heading(self, sent: SentenceAnnotation, report: str, named: list[Organ], walk: Walk) -> bool:
        """Update the scope from a heading or label; True when the sentence is only a heading."""
        norms, concepts = sent.norms, sent.concepts
        if ":" not in norms and len(norms) > CAPS_HEADING_TOKENS:
            return False  # neither a label nor a capitals heading
        text = report[sent.start_char : sent.end_char]
        label = sentence_label(text, norms)
        caps = label is None and is_caps_heading(text)
        if label is None and not caps:
            return False
        if caps:
            if not named and not opens_section(norms):
                return False  # "RAS", "NORMAL": content in capitals, not a heading
            self._open(walk, named, norms, concepts)
            return True
        words, alone = label
        colon = sent.start_char + text.index(":")  # doc.text would rebuild the whole report
        in_label = [c for c in concepts if c.start < colon]
        label_norms = words.split()
        label_organs = organs_named(in_label, self.organs)
        if label_organs:
            self._open(walk, label_organs, label_norms, in_label, inline=not alone)
        elif opens_section(label_norms) or (alone and side_of(label_norms, [], self.organs) is None):
            self._open(walk, [], [], [])  # "Conclusion : ...", "Mensurations :"
        elif alone and (side := side_of(label_norms, [], walk.scope.organs)) is not None:
            walk.scope.side = side  # "À droite :" alone under "REINS :"; "- Droite : IR 0,66" names its own
            walk.break_ = True
        return alone

    @staticmethod
    def _open(
        walk: Walk,
        organs: Sequence[Organ],
        norms: Sequence[str],
        concepts: Sequence[Concept],
        inline: bool = False,
    ) -> None:
        side = side_of(norms, concepts, organs)
        plural = side if side == "both" else None
        if inline:  # "- RD : 11 cm" under "REINS :": the heading's section goes on after the line
            parent = walk.scope.parent if walk.scope.inline else walk.scope
            walk.scope = Scope(
                tuple(organs),
                None if plural else side,
                plural,
                inline=True,
                parent=parent if parent and _names(organs) <= _names(parent.organs) else None,
            )
            walk.subject = ()
            return
        walk.scope = Scope(tuple(organs), None if plural else side, plural)
        walk.subject, walk.break_ = (), True


registry.factory.register("usconvirt.context", assigns=["span._.organs", "span._.is_heading"])(
    ContextComponent
)
