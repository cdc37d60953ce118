"""Renal words used as a landmark for another organ: they must not make a sentence a kidney one.

The exclusion list (normalised tokens: lowercase, no accents), each with the report use it covers:

1. A locative prefix joined to "renal": sous-/sus-/infra-/supra-/juxta-renal locate the aorta ("anevrisme
   de l'aorte sous-renale", "endoprothese aortique sous-renale") or the adrenal ("glande sus-renale");
   pre-/retro-renal place a retroperitoneal mass in front of or behind the kidney ("masse pre-renale");
   hepato-/spleno-renal name a peritoneal space ("epanchement dans l'espace hepato-renal", Morison); also
   across the renal pedicle ("lesion sus pediculaire renale").
2. Renal vessels after a locative: "sous / au-dessus / a hauteur / a l'etage / en regard / jusqu'au
   confluent / abouchement des arteres (veines) renales" place an aortic or caval finding.
3. Renal vessels in a sentence about the aorta or the inferior vena cava ("aorte", "aortique", "cave",
   "VCI", "AAA"): the vessels are the landmark of the vascular finding; unless they are listed with
   them as what the sentence describes ("l'aorte abdominale, des arteres renales et iliaques etait
   normal", "envahissant la veine renale gauche et la veine cave").
4. "loge de nephrectomie": the fossa of a removed kidney, not a kidney.
5. "par rapport au cortex renal" (and 4 tokens after "par rapport", when they hold a renal word): the
   kidney as the reference of another organ's echogenicity ("foie hyperechogene par rapport au cortex
   renal"); "par rapport au precedent examen" is no landmark.
6. The kidney as the place of another organ's finding, in a sentence naming that organ
   (`attribution.py`'s organ words): a place word (`PLACE_WORDS`: "au niveau", "au contact", "en
   regard", "au-dessus") within `PLACE_REACH` tokens before a kidney word ("masse surrenalienne droite
   au niveau du pole superieur du rein droit"); the kidney's own lesion "au niveau du rein gauche" names
   no other organ and stays.
7. The kidney as what another organ's mass spares or pushes: "a distance de la rate, des reins" (to the
   end of the clause), "refoulant (le pole superieur du) rein" (a displacement verb, then a kidney noun
   within `DISPLACED_REACH` tokens); and the bowel sign "pseudo-rein".

A landmark hides the renal concepts it covers, and a sentence holding one inherits no kidney from a
heading or a previous sentence (`context.py`). Span attributes set by the concept components through
`set_concepts`: `concepts` (list of `Concept`, landmark uses removed) and `landmark` (bool) of the
sentence's annotation (`span._.concepts`, `span._.landmark`).
"""

from __future__ import annotations

from collections.abc import Sequence

from spacy.tokens import Doc

from usconvirt.text.annotations import SentenceAnnotation
from usconvirt.text.attribution import names_other_organ
from usconvirt.text.concepts import Concept
from usconvirt.text.organs import RENAL_FORMS
from usconvirt.text.renal_function import function_ranges, states_function

LOCATIVE_PREFIXES = ("sous", "sus", "infra", "supra", "juxta", "pre", "retro", "hepato", "spleno")
PEDICLE_WORDS = frozenset({"pediculaire", "pedicule"})  # "sus pediculaire renale"
VESSELS = frozenset({"artere", "arteres", "veine", "veines"})
VESSEL_LOCATIVES = frozenset(
    {
        "sous",
        "dessous",
        "dessus",
        "hauteur",
        "etage",
        "regard",
        "jusqu'",
        "jusqu'a",
        "jusqu'au",
        "jusqu'aux",
        "confluent",
        "abouchement",
    }
)
VASCULAR_SUBJECTS = frozenset({"aorte", "aortique", "cave", "vci", "aaa", "anevrisme", "endoprothese"})
ARTICLES = frozenset({"de", "d'", "des", "du", "la", "le", "les", "l'"})
LOCATIVE_WINDOW = 4  # tokens between the locative and the vessel ("sous les", "a hauteur des")
FOSSA_PHRASES = (("loge", "de", "nephrectomie"), ("loges", "de", "nephrectomie"))
COMPARISON = ("par", "rapport")  # "hyperechogene par rapport au cortex renal": the kidney as a reference
COMPARISON_REACH = 4  # tokens after "par rapport" that the reference covers
# Only a kidney as the reference is a landmark: "stable par rapport au précédent examen" is a comparison
# in time, said of the kidney's own finding.
REFERENCE_NOUNS = frozenset({"rein", "reins", "cortex", "parenchyme"})
DISTANCE = ("a", "distance")
CLAUSE_ENDS = frozenset({".", ";", "mais", "avec"})  # an enumeration ("..., reins, rate et ovaires") goes on
KIDNEY_NOUNS = frozenset({"rein", "reins"})
DISPLACING_PREFIXES = ("refoul", "deplac", "repouss", "deviant", "devie")
DISPLACED_REACH = 8  # "refoulant le pole superieur du rein", "refoulait l'estomac en avant et le rein"
PSEUDO = ("pseudo", "-", "rein")
PLACE_WORDS = frozenset({"niveau", "contact", "regard", "dessus"})
PLACE_REACH = 5  # "au niveau du pole superieur du rein"


def landmark_ranges(norms: Sequence[str]) -> list[tuple[int, int]]:
    """Token ranges [start, end) of the landmark uses in a sentence's normalised tokens."""
    ranges = []
    vascular = any(token in VASCULAR_SUBJECTS for token in norms)
    other_organ = names_other_organ(norms)
    for i, token in enumerate(norms):
        if _prefixed_renal(token):
            ranges.append((i, i + 1))
        elif token in LOCATIVE_PREFIXES and i + 1 < len(norms):
            j = i + 2 if norms[i + 1] == "-" and i + 2 < len(norms) else i + 1
            if norms[j] in PEDICLE_WORDS and j + 1 < len(norms):
                j += 1
            if norms[j] in RENAL_FORMS:
                ranges.append((i, j + 1))
        elif token in VESSELS and i + 1 < len(norms) and norms[i + 1] in RENAL_FORMS:
            before = norms[max(0, i - LOCATIVE_WINDOW) : i]
            if any(word in VESSEL_LOCATIVES for word in before) or (vascular and not _listed(norms, i)):
                ranges.append((i, i + 2))
        if tuple(norms[i : i + 2]) == COMPARISON:
            reach = norms[i + 2 : i + 2 + COMPARISON_REACH]
            if any(word in RENAL_FORMS or word in REFERENCE_NOUNS for word in reach):
                ranges.append((i, min(len(norms), i + 2 + COMPARISON_REACH)))
        for phrase in (*FOSSA_PHRASES, PSEUDO):
            if tuple(norms[i : i + len(phrase)]) == phrase:
                ranges.append((i, i + len(phrase)))
        if tuple(norms[i : i + 2]) == DISTANCE:
            end = next((k for k in range(i + 2, len(norms)) if norms[k] in CLAUSE_ENDS), len(norms))
            ranges.append((i, end))
        if token in PLACE_WORDS and other_organ:
            reach = norms[i + 1 : i + 1 + PLACE_REACH]
            kidney = next(
                (k for k, word in enumerate(reach) if word in KIDNEY_NOUNS or word in RENAL_FORMS), None
            )
            if kidney is not None:
                ranges.append((i, i + 2 + kidney))
        if token.startswith(DISPLACING_PREFIXES):
            reach = norms[i + 1 : i + 1 + DISPLACED_REACH]
            kidney = next((k for k, word in enumerate(reach) if word in KIDNEY_NOUNS), None)
            if kidney is not None:
                ranges.append((i, i + 2 + kidney))
    return ranges


def _listed(norms: Sequence[str], i: int) -> bool:
    """Whether the renal vessel at token i is an item of a list: a comma or "et" just before it (articles
    skipped), or "et" just after it and its side."""
    k = i - 1
    while k >= 0 and norms[k] in ARTICLES:
        k -= 1
    return (k >= 0 and norms[k] in (",", "et")) or "et" in norms[i + 2 : i + 4]


def _prefixed_renal(token: str) -> bool:
    """ "sousrenal", "infrarenale", "hepatorenal": a locative prefix and a renal ending in one token."""
    return token.endswith(RENAL_FORMS) and any(
        token.startswith(prefix) and token[len(prefix) :].lstrip("-") in RENAL_FORMS
        for prefix in LOCATIVE_PREFIXES
    )


def set_concepts(
    doc: Doc, sentence: SentenceAnnotation, concepts: list[Concept], keep_renal_function: bool = False
) -> None:
    """The sentence's `concepts` (landmark uses and, unless kept, renal-function phrases removed),
    `landmark` and `renal_function`."""
    ranges = landmark_ranges(sentence.norms)
    sentence.landmark = bool(ranges)
    sentence.renal_function = states_function(sentence.norms)
    if sentence.renal_function and not keep_renal_function:
        ranges += function_ranges(sentence.norms)
    if ranges:
        offset = sentence.start
        chars = [(doc[offset + i].idx, doc[offset + j - 1].idx + len(doc[offset + j - 1])) for i, j in ranges]
        concepts = [c for c in concepts if not any(c.start < end and start < c.end for start, end in chars)]
    sentence.concepts = concepts
