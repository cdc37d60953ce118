"""Sentence context: headings that name an organ ("REINS :", "Rein droit :") and laterality."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from usconvirt.text.organs import Organ
from usconvirt.text.tagger import Concept

# A heading line ("REINS :", "- Rein droit :") or an inline label ("Rein droit : 11 cm").
LABEL = re.compile(r"^\s*[-•*·]?\s*([^:.\n]{1,40}?)\s*:\s*(.*)$", re.DOTALL)
# Labels that open a new section without naming an organ: they end the current heading's scope.
SECTION_WORDS = frozenset({
    "indication", "indications", "technique", "conclusion", "conclusions", "resultat", "resultats",
    "renseignements", "motif", "antecedents", "examen", "commentaire", "commentaires", "avis", "impression",
    "synthese", "compte", "echographie", "clinique", "contexte", "histoire", "demande", "protocole",
    "materiel", "description", "abdomen", "pelvis", "autres", "divers", "remarque", "comparaison",
})
RIGHT_WORDS = frozenset({"droit", "droite", "droits", "droites", "rd"})
LEFT_WORDS = frozenset({"gauche", "gauches", "rg"})
BOTH_PREFIXES = ("bilateral", "bilaterau")
SIDED_NOUNS = frozenset({"rein", "pyelon", "bassinet", "uretere"})


@dataclass(frozen=True)
class Label:
    """A heading or inline label of a sentence."""

    words: str  # the normalised label text
    whole_sentence: bool  # a heading alone on its sentence ("REINS :"), not "Rein droit : 11 cm"


def sentence_label(text: str, norms: Sequence[str]) -> Label | None:
    """The sentence's heading or inline label, if it starts with one."""
    match = LABEL.match(text)
    if match is None:
        return None
    label_words = match.group(1).split()
    if not label_words or len(label_words) > 6:
        return None
    rest = match.group(2).strip()
    colon = norms.index(":") if ":" in norms else len(norms)
    return Label(" ".join(norms[:colon]).strip("-•*· "), whole_sentence=not rest)


def is_caps_heading(text: str) -> bool:
    """A short all-capitals line without a final period ("REINS", "FOIE ET VOIES BILIAIRES")."""
    letters = [c for c in text if c.isalpha()]
    return 2 <= len(letters) <= 40 and text.isupper() and not text.rstrip().endswith(".")


def opens_section(words: Sequence[str]) -> bool:
    """Whether a heading's normalised words start a non-organ section ("Conclusion :", "Indication :")."""
    return any(word in SECTION_WORDS for word in words)


def organs_named(concepts: Iterable[Concept], organs: Sequence[Organ]) -> list[Organ]:
    """Organs with at least one anatomical or finding CUI among the concepts."""
    cuis = {c.cui for c in concepts}
    return [organ for organ in organs if cuis & (organ.cuis | organ.finding_cuis)]


def laterality(norms: Sequence[str], concepts: Iterable[Concept], organ: Organ) -> str | None:
    """left/right/both from the sentence's words and side CUIs; None when it names no side."""
    if not organ.paired:
        return None
    sides = {organ.side_cuis[c.cui] for c in concepts if c.cui in organ.side_cuis}
    sides |= {"both" for c in concepts if c.norm in organ.plural_terms}
    for i, token in enumerate(norms):
        if token in {"d", "g"} and i > 0 and norms[i - 1] in SIDED_NOUNS:
            token = "rd" if token == "d" else "rg"  # "rein G"
        if token in RIGHT_WORDS:
            sides.add("right")
        elif token in LEFT_WORDS:
            sides.add("left")
        elif token.startswith(BOTH_PREFIXES) or (token == "deux" and i + 1 < len(norms)
                                                 and norms[i + 1] in {"reins", "cotes", "loges", "ureteres"}):
            sides.add("both")
    if "both" in sides or {"left", "right"} <= sides:
        return "both"
    return sides.pop() if sides else None
