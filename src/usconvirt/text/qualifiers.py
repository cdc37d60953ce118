"""Abnormality of a sentence with negation scope: rules over EDS-NLP's normalised tokens.

`abnormal` is True when a finding is asserted ("kyste de 15 mm"), False when findings are negated
or the sentence states normality ("pas de dilatation", "taille normale"), None when it says neither
("mesure 11 cm"). Accuracy on the hand-labelled gold set is measured by bench/text_bench.py.

Conventions (those of the gold files, docs/text.md):
- a finding counts whatever its weight: simple cysts, findings "stable", "inchangé" or "en régression"
  (still there), hypotheses ("évoquant", "pouvant correspondre à", "probable", "à contrôler"),
  post-operative states of the kidney (scar, "sonde JJ", "néphrostomie");
- a finding is negated by a cue before it ("pas de", "sans", "absence de", "disparition de", "régression
  complète de"; `NEGATION_WINDOW` tokens, cut by `SCOPE_BREAKERS` except "en faveur de" and "mis en
  évidence"; "non" negates only the next words, "un rein non fonctionnel et des cavités dilatées"; "sans
  injection" negates the technique, not a later finding) or after it in its clause ("absente", "non
  retrouvée", "non visualisée", "a disparu");
- a word that is no finding in its context is skipped (`BENIGN_AFTER`): "hypertrophie compensatrice",
  "dilatation physiologique", "..., variante de la normale"; the organ itself is no finding ("greffon",
  "rein unique");
- measurements alone give None.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

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
    "hematome",
    "lacune",
    "remaniement",
    "angiome",
    "metasta",
    "adenom",
    "carcino",  # carcinome, carcinoïde
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
    # findings of French renal reports the list lacked (stones, masses, post-operative
    # states, Doppler and size changes, infarcts, collections)
    "nephrolithias",
    "urolithias",
    "tissulaire",  # "formation / lésion / composante tissulaire": a solid mass
    "expansi",  # "processus expansif"
    "neoplas",
    "cancer",
    "recidiv",
    "augment",  # "augmenté de volume", "échogénicité augmentée", "IR augmenté"
    "accru",
    "eleve",  # "IR élevé à 0,80"
    "tardus",  # "tardus parvus" flow
    "infarc",
    "ischemi",
    "necros",
    "urinome",
    "lymphocel",
    "distend",
    "remani",
    "nephrostom",
    "malrotation",
    "bifide",
    "oedem",
    "inflammat",
    "malformat",
    "hypoplas",
    "aplasi",
    "retreci",  # rétrécissement, rétréci: a narrowing (jonction pyélo-urétérale)
)
# Whole tokens naming a finding (too short to be prefixes): angiomyolipoma, a double-J stent.
FINDING_TOKENS = frozenset({"aml", "jj"})
# Multi-token abnormal phrases, as tuples of prefixes of consecutive normalised tokens ("petit", "rein"
# also matches "petits reins"). A solitary kidney ("rein unique") is no finding by itself: the gold
# convention judges the kidney described, and the missing one is another sentence's finding.
FINDING_PHRASES = (
    ("petit", "rein"),
    ("petite", "taille"),
    ("gros", "rein"),
    ("mal", "differenci"),
    ("taille", "reduit"),
    ("reduit", "de", "taille"),
    ("perte", "de"),
    ("perte", "d'"),
    ("mauvaise", "differenci"),
    ("double", "j"),
    ("fer", "a", "cheval"),
    ("mega", "-", "uret"),
)
# After a finding word, in its clause: the word names no abnormality ("hypertrophie compensatrice",
# "pyélectasie physiologique", "colonne de Bertin hypertrophique, variante de la normale").
BENIGN_AFTER = frozenset(
    {
        "compensatrice",
        "compensatrices",
        "compensateur",
        "compensateurs",
        "compensatoire",
        "physiologique",
        "physiologiques",
        "variante",
    }
)
BENIGN_REACH = 8  # tokens after the finding; commas allowed ("..., variante de la normale")
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
NEGATION_TOKENS = frozenset(
    {
        "pas",
        "sans",
        "absence",
        "ni",
        "aucun",
        "aucune",
        "non",
        "jamais",
        "ne",
        "n'",
        "disparition",
        "resolution",
    }
)
# After a finding, in its clause: it is absent, or gone ("la dilatation a disparu").
ABSENT_AFTER = frozenset({"absent", "absente", "absents", "absentes", "negatif", "negative"})
GONE_AFTER = frozenset(
    {
        "disparu",
        "disparue",
        "disparus",
        "disparues",
        "disparait",
        "disparaissent",
        "resolu",
        "resolue",
        "resolus",
        "resolues",
    }
)
POST_NEGATION = ABSENT_AFTER | GONE_AFTER
GONE = GONE_AFTER | {"disparition", "resolution"}
POST_REACH = 6  # tokens after the finding, to the end of its clause
# "non" + one of these after a finding: "lithiase non retrouvée / non visualisée / non mise en évidence".
NOT_SEEN = (
    "retrouv",
    "vu",
    "visib",
    "visualis",
    "decel",
    "objectiv",
    "mis",
    "identifi",
    "detect",
    "individualis",
)
# "régression complète / totale de la dilatation": the finding is gone.
COMPLETE = ("complet", "total")
# A negation stops at these: "pas de lithiase, mais un kyste".
SCOPE_BREAKERS = frozenset({"mais", "cependant", "toutefois", "par", "en", "avec", "et", ";", ":", ".", "("})
NEGATION_WINDOW = 8
# "non" negates the word after it ("un rein non fonctionnel et des voies urinaires dilatées")
ADJECTIVE_NEGATION_WINDOW = 2
SCOPE_NOUNS = frozenset({"faveur", "evidence"})  # "en faveur de", "mis en évidence": the scope goes on
# "sans injection (de produit de contraste)": the technique, not a finding, is what "sans" negates; a
# finding after it ("sans injection a montré un hématome") is asserted.
TECHNIQUE_WORDS = frozenset({"injection", "contraste", "preparation", "opacification"})
# Tokens that keep a negation alive across a comma: "pas de dilatation, de lithiase ni de kyste".
ENUMERATION = frozenset({",", "ni", "de", "d'", "du", "des", "la", "le", "les", "l'", "ou"})
# Tokens that end a finding's clause for the cues after it.
CLAUSE_END = frozenset({",", ";", ":", ".", "(", "mais", "et", "avec", "cependant", "toutefois"})


def abnormal(tokens: Sequence[str], foreign: Collection[int] = frozenset()) -> bool | None:
    """True/False/None for a sentence given as normalised tokens; asserted findings at the `foreign`
    indices (another organ's, `attribution.py`) are left out."""
    asserted = negated = normal = False
    negation_until = -1
    for i, token in enumerate(tokens):
        if token in NEGATION_TOKENS or _complete_regression(tokens, i):
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            window = ADJECTIVE_NEGATION_WINDOW if token == "non" else NEGATION_WINDOW
            negation_until = -1 if following in TECHNIQUE_WORDS else i + window
            continue
        if token in SCOPE_BREAKERS and not _keeps_scope(tokens, i):
            negation_until = -1
        elif token == "," and i <= negation_until and not _enumerating(tokens, i):
            negation_until = -1
        length = finding_word_at(tokens, i)
        if length and _benign(tokens, i + length):
            normal = True  # "hypertrophie compensatrice": an adaptation, said of a normal kidney
        elif length:
            if i <= negation_until or _post_negated(tokens, i):
                negated = True
            elif i not in foreign:
                asserted = True
        elif token in NORMAL_TOKENS:
            normal = True
    if asserted:
        return True
    if negated or normal:
        return False
    return None


def finding_at(tokens: Sequence[str], i: int) -> int:
    """Length in tokens of the finding that starts at token i (a phrase, or one prefixed word); 0: none,
    or a finding word that names no abnormality here (`BENIGN_AFTER`)."""
    length = finding_word_at(tokens, i)
    return 0 if length and _benign(tokens, i + length) else length


def finding_word_at(tokens: Sequence[str], i: int) -> int:
    """Length of the finding word or phrase at token i, whatever follows it; 0: none."""
    token = tokens[i]
    if token.startswith(FINDING_PREFIXES) or token in FINDING_TOKENS:
        return 1
    for phrase in FINDING_PHRASES:
        if token.startswith(phrase[0]) and _phrase_at(tokens, i, phrase):
            return len(phrase)
    return 0


def _phrase_at(tokens: Sequence[str], i: int, phrase: tuple[str, ...]) -> bool:
    return i + len(phrase) <= len(tokens) and all(
        t.startswith(p) for t, p in zip(tokens[i : i + len(phrase)], phrase, strict=False)
    )


def _benign(tokens: Sequence[str], start: int) -> bool:
    """Whether a `BENIGN_AFTER` word follows a finding in its clause (commas allowed)."""
    for token in tokens[start : start + BENIGN_REACH]:
        if token in BENIGN_AFTER:
            return True
        if token in (";", ".", "mais", "et", ":"):
            return False
    return False


def _keeps_scope(tokens: Sequence[str], i: int) -> bool:
    """A scope breaker that does not end the negation: "et de ...", "pas d'argument en faveur de ...",
    "on ne met pas en évidence de ..."."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    return (tokens[i] == "et" and _enumerating(tokens, i)) or (tokens[i] == "en" and following in SCOPE_NOUNS)


def _complete_regression(tokens: Sequence[str], i: int) -> bool:
    """ "Régression complète de ...": a negation cue for the findings after it."""
    return tokens[i].startswith("regress") and i + 1 < len(tokens) and tokens[i + 1].startswith(COMPLETE)


def reports_gone(tokens: Sequence[str]) -> bool:
    """Whether the sentence says something has gone ("a disparu", "disparition de")."""
    return any(token in GONE for token in tokens) or any(
        _complete_regression(tokens, i) for i in range(len(tokens))
    )


def _enumerating(tokens: Sequence[str], i: int) -> bool:
    """Whether the token after a comma or 'et' continues a negated list ("ni de lithiase", "de kyste")."""
    return i + 1 < len(tokens) and tokens[i + 1] in ENUMERATION


def _post_negated(tokens: Sequence[str], i: int) -> bool:
    """ "kyste : non", "dilatation absente", "lithiase non retrouvée", "épanchement péri-rénal absent",
    "la dilatation a disparu": a cue after the finding, in its clause."""
    if tuple(tokens[i + 1 : i + 3]) in {(":", "non"), (":", "0")}:
        return True
    clause = []
    for token in tokens[i + 1 : i + 1 + POST_REACH]:
        if token in CLAUSE_END:
            break
        clause.append(token)
    return any(t in POST_NEGATION for t in clause) or any(
        t == "non" and n.startswith(NOT_SEEN) for t, n in zip(clause, clause[1:], strict=False)
    )
