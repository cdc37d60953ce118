"""Which findings of a kidney sentence are the kidney's.

Real reports and case summaries list several organs in one sentence: "Le foie, la rate, le pancréas et
les reins sont normaux avec présence d'une masse latéro-utérine", "... ainsi qu'un épanchement
intrapéritonéal, mais ne visualise aucune anomalie rénale". A finding (or normality word) in a segment of
the sentence that names another organ and no kidney word is that organ's: it does not make the kidney
abnormal. Normality words still count (a list shares them: "aspect normal du foie, de la rate, des
reins"). Segments are cut at commas, semicolons, brackets, "mais", "avec" and "ainsi (que)";
a negated finding keeps counting as negated, since a negation cue's scope runs across segments ("aucune
anomalie hépato-biliaire, pancréatique ou rénale").
"""

from __future__ import annotations

from collections.abc import Sequence

from usconvirt.text.organs import RENAL_FORMS

SEGMENT_BREAKS = frozenset({",", ";", "(", ")", "mais", "avec", "ainsi"})
KIDNEY_WORDS = frozenset({"rein", "reins", "greffon", *RENAL_FORMS})
KIDNEY_PREFIXES = ("pyel", "calic", "nephr", "hydronephr", "ureterohydro", "perirenal", "pararenal")
# Prefixes of normalised tokens naming another organ or site; short names as whole tokens.
OTHER_ORGAN_PREFIXES = (
    "hepat",
    "splen",
    "pancrea",
    "vesicul",
    "biliaire",
    "vessie",
    "vesical",
    "uter",
    "annex",
    "ovar",
    "ovair",
    "peritone",
    "intraperitone",
    "pleur",
    "pulmon",
    "poumon",
    "cardiaque",
    "coeur",
    "cœur",
    "intestin",
    "digesti",
    "gastr",
    "estomac",
    "grossesse",
    "thyro",
    "surren",
    "aort",
    "prostat",
    "cerebr",
    "thorac",
)
OTHER_ORGAN_TOKENS = frozenset({"foie", "rate", "colon", "os"})


def foreign_tokens(norms: Sequence[str]) -> frozenset[int]:
    """Indices of the tokens in segments that name another organ and no kidney word."""
    foreign: set[int] = set()
    start = 0
    for end in [*(i for i, t in enumerate(norms) if t in SEGMENT_BREAKS), len(norms)]:
        segment = norms[start:end]
        if names_other_organ(segment) and not _names_kidney(segment):
            foreign.update(range(start, end))
        start = end + 1
    return frozenset(foreign)


def _names_kidney(tokens: Sequence[str]) -> bool:
    return any(t in KIDNEY_WORDS or t.startswith(KIDNEY_PREFIXES) for t in tokens)


def names_other_organ(tokens: Sequence[str]) -> bool:
    """Whether the tokens name an organ or site other than the kidney."""
    return any(t in OTHER_ORGAN_TOKENS or t.startswith(OTHER_ORGAN_PREFIXES) for t in tokens)
