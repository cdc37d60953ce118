"""Kidney-part words that name a kidney part only in a renal context.

"Cortex", "cortical", "médullaire", "pyramides", "cavités", "sinus", "dédifférenciation" are kidney parts in
a renal ultrasound report, but the brain's cortex, the spinal cord ("atrophie cérébrale et médullaire"), the
peritoneal cavity or a maxillary sinus elsewhere. A concept whose every word is such a word
(`ambiguous_part`) names the kidney only when:
- the sentence also names the kidney by an unambiguous concept, or
- the sentence is in a kidney scope (a heading, an inline label) or follows a sentence about the kidney
  (`context.py`), and it names no other site (`OTHER_SITE_PREFIXES`: brain, spinal cord, orbit, heart,
  bone, peritoneum, pleura, adrenal...).
"Cortico-médullaire", "index cortical", "cavités pyélocalicielles" are unambiguous: a second word says kidney.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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
    """Whether the concept's words are all kidney-part words of other organs too."""
    return all(word in AMBIGUOUS_PART_WORDS for word in concept.norm.split())


def other_site(norms: Sequence[str]) -> bool:
    """Whether the sentence names another organ's site, which the part words then belong to (a vertebral
    level such as "D12" or "L2", one token or two, places them in the spine)."""
    return any(
        token in OTHER_SITE_TOKENS
        or token.startswith(OTHER_SITE_PREFIXES)
        or VERTEBRAL_LEVEL.fullmatch(token + (following if token in VERTEBRAE else ""))
        for token, following in zip(norms, [*norms[1:], ""], strict=True)
    )
