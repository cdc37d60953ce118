"""Kidney-part words that name a kidney part only in a renal context.

"Cortex", "cortical", "médullaire", "pyramides", "cavités", "sinus", "dédifférenciation" are kidney parts in
a renal ultrasound report, but the brain's cortex, the spinal cord ("atrophie cérébrale et médullaire"), the
peritoneal cavity or a maxillary sinus elsewhere. A concept whose every word is such a word
(`ambiguous_part`) names the kidney only when:
- the sentence also names the kidney by an unambiguous concept, or
- the sentence is in a kidney scope (a heading, an inline label), follows a sentence about the kidney,
  or is in a report's present tense and names no other organ at all (`context.py`), and it names no
  other site (`OTHER_SITE_PREFIXES`: brain, spinal cord, orbit, heart,
  bone, peritoneum, pleura, adrenal...).
"Cortico-médullaire", "index cortical", "cavités pyélocalicielles" are unambiguous: a second word says kidney.

The urinary tract as a whole ("pas de dilatation des voies urinaires", "sans retentissement sur le haut de
l'appareil urinaire", "aucune anomalie digestive ou urinaire") says what the kidneys' drainage looks like:
`names_urinary_tract` makes such a sentence a kidney one (both sides unless one is said), except for an
infection ("infection des voies urinaires"), the lower tract ("voies urinaires basses", "bas appareil
urinaire"), and the tract
as the name of an exam in a sentence about another organ ("échographie de l'appareil urinaire : vessie
...").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from usconvirt.text.attribution import names_other_organ
from usconvirt.text.concepts import Concept

AMBIGUOUS_PART_WORDS = frozenset(
    {
        "cortex",
        "cortical",
        "corticale",
        "corticales",
        "corticaux",
        "medullaire",
        "medullaires",
        "pyramide",
        "pyramides",
        "cavite",
        "cavites",
        "sinus",
        "sinusal",
        "sinusale",
        "dedifferenciation",
    }
)
ARTICLES = frozenset({"le", "la", "les", "l'", "du", "de", "des", "d'"})
# Prefixes of normalised tokens placing a part word in another organ.
OTHER_SITE_PREFIXES = (
    "cerebr",
    "intramedull",
    "medullo",
    "epidur",
    "mening",
    "neuro",
    "nerf",
    "substance",
    "cervea",
    "encephal",
    "cranien",
    "moelle",
    "spinal",
    "rachi",
    "vertebr",
    "orbit",
    "ocul",
    "cardia",
    "coeur",
    "cœur",
    "myocard",
    "ventricul",
    "osseu",
    "femor",
    "femur",
    "humer",
    "tibia",
    "surren",
    "peritone",
    "intraperitone",
    "pleur",
    "thorac",
    "nasal",
    "maxill",
    "sphenoid",
    "ethmoid",
    "frontal",
    "buccal",
    "dentaire",
    "thym",
    "thyro",
    "ovari",
)
VERTEBRAL_LEVEL = re.compile(r"[cdtl]\d{1,2}")
VERTEBRAE = frozenset({"c", "d", "t", "l"})  # "T11" is sometimes two tokens
OTHER_SITE_TOKENS = frozenset({"os", "oeil", "yeux", "sep"})  # bone, eye, multiple sclerosis


def ambiguous_part(concept: Concept) -> bool:
    """Whether the concept's words (articles aside: QuickUMLS matches "la cavité") are all kidney-part
    words of other organs too."""
    words = [word for word in concept.norm.split() if word not in ARTICLES]
    return bool(words) and all(word in AMBIGUOUS_PART_WORDS for word in words)


def other_site(norms: Sequence[str]) -> bool:
    """Whether the sentence names another organ's site, which the part words then belong to (a vertebral
    level such as "D12" or "L2", one token or two, places them in the spine)."""
    return any(
        token in OTHER_SITE_TOKENS
        or token.startswith(OTHER_SITE_PREFIXES)
        or VERTEBRAL_LEVEL.fullmatch(token + (following if token in VERTEBRAE else ""))
        for token, following in zip(norms, [*norms[1:], ""], strict=True)
    )


TRACT_NOUNS = frozenset({"voies", "voie", "appareil", "arbre"})
URINARY = frozenset({"urinaire", "urinaires"})
ANOMALY_REACH = 4  # "anomalie échographique digestive ou urinaire"
INFECTION_WORDS = frozenset({"infection", "infections", "infectieux", "infectieuse"})
LOWER_TRACT = frozenset({"bas", "basse", "basses", "inferieur", "inferieure", "inferieures", "inferieurs"})
EXAM_NOUNS = ("echographie", "uiv", "urographie", "exploration", "imagerie")


def names_urinary_tract(norms: Sequence[str]) -> bool:
    """Whether the sentence describes the urinary tract as a whole (the module docstring's rule)."""
    other = None
    for i, token in enumerate(norms):
        if token not in URINARY:
            continue
        before = norms[max(0, i - ANOMALY_REACH) : i]
        tract = i > 0 and norms[i - 1] in TRACT_NOUNS
        if not (tract or any(word.startswith("anomal") for word in before)):
            continue
        lower = (i + 1 < len(norms) and norms[i + 1] in LOWER_TRACT) or (
            i > 1 and norms[i - 2] in LOWER_TRACT
        )
        if INFECTION_WORDS.intersection(before) or lower:
            continue
        if any(word.startswith(EXAM_NOUNS) for word in before):
            other = names_other_organ(norms) if other is None else other
            if other:
                continue
        return True
    return False
