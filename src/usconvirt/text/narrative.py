"""Report lines against narrative prose, for the carried subject (`context.py`, rule 3).

An ultrasound report goes on about an organ in short lines ("Rein droit de 11 cm. Pas de lithiase.");
a clinical narrative (a case report, a referral letter, a multi-exam summary) tells a story in long
sentences, past tenses, lab values and the patient's age, and its next sentence is about the patient, a
treatment or the course, not the organ just named. So a sentence naming no organ carries the previous
one's subject only when it is a report line (`report_line`): at most `REPORT_LINE_TOKENS` tokens, no
past or narrative tense (imparfait "-ait", "était", "a été"...), no lab unit, no word for the patient as
a person. In prose a sentence must name its organ itself, or continue a lesion with a demonstrative
(`continues_lesion`: "Cette lésion ...", "Ce processus ..."). On the project's gold reports every
carried kidney sentence has at most 11 tokens and no past tense.
"""

from __future__ import annotations

from collections.abc import Sequence

REPORT_LINE_TOKENS = 16
NARRATIVE_TOKENS = frozenset(
    {"etait", "etaient", "avait", "avaient", "fut", "furent", "ete", "eu", "va", "vont", "allait"}
)
IMPERFECT_ENDINGS = ("ait", "aient")
# "-ait" words that are no imperfect: nouns, adjectives, and present-tense "-aître" verbs ("disparaît")
NOT_VERBS = frozenset(
    {
        "fait",
        "parfait",
        "extrait",
        "retrait",
        "trait",
        "souhait",
        "lait",
        "attrait",
        "disparait",
        "apparait",
        "reapparait",
        "parait",
        "connait",
    }
)
LAB_UNITS = frozenset({"mmol", "µmol", "umol", "meq", "mg", "g/l", "mg/l", "ui", "µl", "dl"})
# The patient as a person ("Il s'agit d'un enfant de 3 ans", "la patiente présentait"): a case history.
PERSON_WORDS = frozenset(
    {"patient", "patiente", "patients", "nourrisson", "enfant", "homme", "femme", "ans", "age", "agee"}
)
DEMONSTRATIVES = frozenset({"ce", "cet", "cette", "ces"})
# Prefixes of the lesion nouns a demonstrative takes up.
LESION_NOUNS = (
    "processus",
    "formation",
    "image",
    "tumeu",
    "masse",
    "lesion",
    "kyst",
    "nodul",
    "hematome",
    "collection",
    "calcul",
    "lithias",
    "dilatation",
    "angiomyolipome",
    "carcinome",
)


def narrative_tense(norms: Sequence[str]) -> bool:
    """Whether a past or narrative verb form appears ("était", "montrait", "a été", "va présenter")."""
    return any(
        token in NARRATIVE_TOKENS
        or (token.endswith(IMPERFECT_ENDINGS) and len(token) > 4 and token not in NOT_VERBS)
        for token in norms
    )


def report_line(norms: Sequence[str]) -> bool:
    """A short present-tense line without lab values or the patient as a person, as a report writes it."""
    return (
        len(norms) <= REPORT_LINE_TOKENS
        and not narrative_tense(norms)
        and not any(token in LAB_UNITS or token in PERSON_WORDS for token in norms)
    )


def continues_lesion(norms: Sequence[str]) -> bool:
    """ "Cette lésion ...", "Ce processus ...", "Ces kystes ...": the sentence takes up a lesion."""
    return len(norms) > 1 and norms[0] in DEMONSTRATIVES and norms[1].startswith(LESION_NOUNS)
