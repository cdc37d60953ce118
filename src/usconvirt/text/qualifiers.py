"""Abnormality of a sentence with negation scope: rules over EDS-NLP's normalised tokens.

`abnormal` is True when a finding is asserted ("kyste de 15 mm"), False when findings are negated
or the sentence states normality ("pas de dilatation", "taille normale"), None when it says neither
("mesure 11 cm"). Accuracy on the hand-labelled gold set is measured by bench/text_bench.py.
"""

from __future__ import annotations

from collections.abc import Sequence

# Prefixes of normalised tokens (lowercase, no accents) naming an abnormal finding.
FINDING_PREFIXES = (
    "kyst",
    "dilat",
    "hydronephro",
    "ureterohydronephro",
    "lithias",
    "calcul",
    "microcalcul",
    "calcifi",
    "atroph",
    "hypertroph",
    "masse",
    "lesion",
    "nodul",
    "tumeu",
    "tumor",
    "epanchement",
    "collection",
    "abces",
    "angiomyolipome",
    "polykyst",
    "multikyst",
    "pyelectasie",
    "ectop",
    "duplicite",
    "cicatric",
    "encoche",
    "amincis",
    "aminci",
    "stase",
    "distension",
    "obstacle",
    "obstructi",
    "anomal",
    "anormal",
    "pathologique",
    "suspect",
    "asymetri",
    "dysplas",
    "hyperechogen",
    "hypoechogen",
    "heterogen",
    "nephrectom",
    "agenesie",
    "steatos",
    "cholestas",
    "splenomegal",
    "hepatomegal",
    "anevrism",
    "thromb",
    "polype",
    "sludge",
    "epaissi",
    "infiltr",
    "cirrho",
    "pyelonephrit",
    "nephropathi",
    "syndrome",
    "irregul",
    "bossel",
    "dedifferenci",
    "hydronephrose",
    "ureterocele",
    "greffon",
    "transplant",
    "hematome",
    "lacune",
    "remaniement",
    "angiome",
    "metasta",
    "adenom",
    "carcinom",
    "angiomyolipom",
    "calicectasie",
    "megaureter",
    "reflux",
    "oncocytome",
    "sequell",
    "diverticul",
    "hydrocalic",
    "lipomatose",
    "refoul",
    "nephrocalc",
    "microlithias",
    "stenos",
    "retentissement",
    "accelera",
    "nephromegal",
    "hydrocalic",
    "nephrit",
    "dpc",
    "uhn",
    "diminu",
    "amorti",
    "ectasi",
)
# Multi-token abnormal phrases, as tuples of normalised tokens.
FINDING_PHRASES = (
    ("petit", "rein"),
    ("petite", "taille"),
    ("augmente", "de", "taille"),
    ("augmentation", "de", "taille"),
    ("mal", "differencie"),
    ("mal", "differenciee"),
    ("taille", "reduite"),
    ("rein", "unique"),
    ("perte", "de", "la", "differenciation"),
    ("mauvaise", "differenciation"),
)
NORMAL_TOKENS = frozenset(
    {
        "normal",
        "normale",
        "normaux",
        "normales",
        "ras",
        "harmonieux",
        "harmonieuse",
        "homogene",
        "homogenes",
        "regulier",
        "reguliers",
        "reguliere",
        "regulieres",
        "conserve",
        "conservee",
        "conserves",
        "conservees",
        "satisfaisant",
        "satisfaisante",
        "habituel",
        "habituelle",
        "habituels",
        "habituelles",
        "symetrique",
        "symetriques",
        "banal",
        "banale",
        "particularite",
        "particularites",
        "normalement",
        "correcte",
        "correct",
        "correctement",
        "bien",
        "permeable",
        "permeables",
        "libre",
        "libres",
        "bonne",
        "bonnes",
        "normes",
        "fin",
        "fine",
        "fins",
        "fines",
        "rien",
        "preserve",
        "preservee",
        "preserves",
        "preservees",
        "respecte",
        "respectee",
        "respectes",
        "respectees",
    }
)
NEGATION_TOKENS = frozenset({"pas", "sans", "absence", "ni", "aucun", "aucune", "non", "jamais", "ne", "n'"})
POST_NEGATION = frozenset({"absent", "absente", "absents", "absentes", "negatif", "negative"})
# A negation stops at these: "pas de lithiase, mais un kyste".
SCOPE_BREAKERS = frozenset({"mais", "cependant", "toutefois", "par", "en", "avec", "et", ";", ":", ".", "("})
NEGATION_WINDOW = 8
# Tokens that keep a negation alive across a comma: "pas de dilatation, de lithiase ni de kyste".
ENUMERATION = frozenset({",", "ni", "de", "d'", "du", "des", "la", "le", "les", "l'", "ou"})


def abnormal(tokens: Sequence[str]) -> bool | None:
    """True/False/None for a sentence given as normalised tokens."""
    asserted = negated = normal = False
    negation_until = -1
    for i, token in enumerate(tokens):
        if token in NEGATION_TOKENS:
            negation_until = i + NEGATION_WINDOW
            continue
        if token in SCOPE_BREAKERS and not (token == "et" and _enumerating(tokens, i)):
            negation_until = -1
        elif token == "," and i <= negation_until and not _enumerating(tokens, i):
            negation_until = -1
        if _is_finding(tokens, i):
            if i <= negation_until or _post_negated(tokens, i):
                negated = True
            else:
                asserted = True
        elif token in NORMAL_TOKENS:
            normal = True
    if asserted:
        return True
    if negated or normal:
        return False
    return None


def finding_at(tokens: Sequence[str], i: int) -> int:
    """Length in tokens of the finding that starts at token i (a phrase, or one prefixed word); 0: none."""
    if tokens[i].startswith(FINDING_PREFIXES):
        return 1
    for phrase in FINDING_PHRASES:
        if tokens[i] == phrase[0] and tuple(tokens[i : i + len(phrase)]) == phrase:
            return len(phrase)
    return 0


def _is_finding(tokens: Sequence[str], i: int) -> bool:
    return finding_at(tokens, i) > 0


def _enumerating(tokens: Sequence[str], i: int) -> bool:
    """Whether the token after a comma or 'et' continues a negated list ("ni de lithiase", "de kyste")."""
    return i + 1 < len(tokens) and tokens[i + 1] in ENUMERATION


def _post_negated(tokens: Sequence[str], i: int) -> bool:
    """ "kyste : non", "dilatation absente", "lithiase non retrouvée"."""
    window = tokens[i + 1 : i + 4]
    return (
        any(t in POST_NEGATION for t in window)
        or (
            "non" in window
            and window.index("non") + 1 < len(window)
            and window[window.index("non") + 1].startswith(("retrouv", "vu", "visib", "decel", "objectiv"))
        )
        or tuple(window[:2]) in {(":", "non"), (":", "0")}
    )
