"""Renal function and lab statements, told apart from what the kidney looks like.

"Insuffisance rénale aiguë", "fonction rénale normale", "bilan rénal", "défaillance ... rénale", "chez
l'insuffisant rénal", "élimination rénale", créatinine, urée, clairance, dialyse: these say how the
kidneys work, not what an image of them shows, so they make no kidney sentence for pairing with images.
Word classes (normalised tokens: lowercase, no accents):

1. A function noun (`FUNCTION_NOUNS`) governing a renal adjective within `FUNCTION_REACH` tokens, across
   adjectives and an enumeration ("défaillance multi viscérale : hémodynamique, neurologique et rénale")
   but not across an imaging word ("bilan radiologique ... échographie rénale" is imaging) or a
   preposition that opens another noun phrase.
2. "Néphropathie" in clinical prose (no report line, `narrative.report_line`: long, past tense or lab
   values): a clinical diagnosis ("pas de commémoratif familial de néphropathie"). On a report line it
   stays a kidney word: a conclusion names it as an imaging reading ("aspect de néphropathie chronique").
3. Lab and treatment words (`LAB_PREFIXES`): créatinine, urée, clairance, protéinurie, ionogramme,
   natriurèse, (hémo)dialyse.

`span._.renal_function` (bool) is set on every sentence holding any of them; the renal concepts inside
a function phrase (1, 2) are hidden (`function_ranges`) unless `SentenceConfig.keep_renal_function`
keeps them, and such a sentence inherits no kidney from a heading or a previous sentence (`context.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from usconvirt.text.narrative import report_line
from usconvirt.text.organs import RENAL_FORMS

FUNCTION_NOUNS = frozenset(
    {
        "insuffisance",
        "insuffisant",
        "insuffisants",
        "elimination",
        "excretion",
        "fonction",
        "fonctions",
        "bilan",
        "defaillance",
        "atteinte",
        "clairance",
        "toxicite",
        "nephrotoxicite",
    }
)
FUNCTION_REACH = 8  # tokens from the function noun to its renal adjective
# Tokens a function noun's reach does not cross: another noun phrase or clause starts there.
REACH_STOPS = frozenset({".", ";", "de", "d'", "du", "des", "avec", "sans", "par", "sur", "a", "au", "aux"})
IMAGING_PREFIXES = ("echo", "scan", "tdm", "irm", "radio", "morpholog", "uro", "imager", "explor", "examen")
LAB_PREFIXES = (
    "creatinin",
    "creatinemi",
    "uree",
    "uremi",
    "clairance",
    "proteinuri",
    "albuminuri",
    "ionogramme",
    "natriures",
    "kaliures",
    "dialys",
    "hemodialys",
)


def function_ranges(norms: Sequence[str]) -> list[tuple[int, int]]:
    """Token ranges [start, end) of function phrases (rules 1, 2) in a sentence's normalised tokens."""
    ranges = []
    narrative = None
    for i, token in enumerate(norms):
        if token.startswith("nephropathi"):
            narrative = not report_line(norms) if narrative is None else narrative
            if narrative:
                ranges.append((i, i + 1))
        if token not in FUNCTION_NOUNS:
            continue
        for j in range(i + 1, min(len(norms), i + 1 + FUNCTION_REACH)):
            if norms[j] in RENAL_FORMS:
                ranges.append((i, j + 1))
                break
            if norms[j] in REACH_STOPS or norms[j].startswith(IMAGING_PREFIXES):
                break
    return ranges


def states_function(norms: Sequence[str]) -> bool:
    """Whether the sentence holds a renal-function phrase or a lab word (rules 1 to 3)."""
    return bool(function_ranges(norms)) or any(token.startswith(LAB_PREFIXES) for token in norms)
