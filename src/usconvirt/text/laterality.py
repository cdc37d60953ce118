"""Laterality of organ sentences, and the `usconvirt.laterality` component.

`span._.laterality` (dict organ name -> left/right/both/unspecified, for the organs of `span._.organs`):
1. the sentence's own side: side CUIs (rein droit/RD, rein gauche/RG, deux reins), the words droit/gauche
   and bilatéral, "des deux côtés", "de part et d'autre", a plural noun ("reins", "artères rénales",
   "parenchymes");
   left + right = both; "controlatéral" is the side opposite the last one stated, "homolatéral" the same;
2. else the side of the label that opened the scope ("Rein droit :", "À gauche :", "Droit :"), of the block
   a sentence-initial adverbial opened ("À gauche, kyste. Pas de lithiase."), or, for a sentence opening
   on a pronoun ("Il présente un kyste"), the side just described;
3. else, once both sides were described in the scope or paragraph, both ("RD : 11 cm. RG : 12 cm. Pas de
   dilatation."), unless the sentence goes on describing a finding of the last side: the last sided
   sentence asserted a finding and this one asserts one too ("RG : kyste de 2 cm. Ce kyste est cloisonné.");
   then, as without both sides described, the last side stated. A normal or negated sentence after
   a finding ("... Calicectasie gauche. Pas de collection périrénale.") is about both;
4. else the scope's plural heading ("REINS :" = both); else both for an exam of the kidneys ("l'échographie
   rénale était normale", "une échographie cardiaque, rénale, ...") or a normal or negative statement
   about the kidneys in general, "rénal" the only kidney word ("aucune anomalie rénale"); else unspecified.
   Unpaired organs are unspecified.
Side words that place another structure ("fosse iliaque droite", "lobe gauche") are not the organ's side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edsnlp.core import registry
from edsnlp.core.pipeline import Pipeline
from spacy.tokens import Doc

from usconvirt.text.annotations import SentenceAnnotation
from usconvirt.text.concepts import Concept
from usconvirt.text.kidney_parts import names_urinary_tract
from usconvirt.text.organs import ORGANS, RENAL_FORMS, Organ

RIGHT_WORDS = frozenset({"droit", "droite", "droits", "droites", "rd"})
LEFT_WORDS = frozenset({"gauche", "gauches", "rg"})
BOTH_PREFIXES = ("bilateral", "bilaterau")
CONTRALATERAL = frozenset({"controlateral", "controlaterale", "controlaterales", "controlateraux"})
HOMOLATERAL = frozenset({"homolateral", "homolaterale", "ipsilateral", "ipsilaterale"})
SIDED_NOUNS = frozenset({"rein", "pyelon", "bassinet", "uretere"})
BOTH_NOUNS = frozenset({"reins", "cotes", "loges", "ureteres"})  # after "deux" or "2"
# Plurals of parts a kidney has one of: the plural alone means both ("Les parenchymes rénaux sont fins").
ONE_PER_KIDNEY_PLURALS = frozenset({"parenchymes", "hiles"})
BOTH_PHRASE = ("part", "et", "d'", "autre")  # "de part et d'autre"
# Structures whose side is not the organ's: "greffon en fosse iliaque droite", "lobe droit du foie".
OTHER_SIDED = frozenset(
    {
        "iliaque",
        "hypochondre",
        "lobe",
        "flanc",
        "colon",
        "ovaire",
        "hemithorax",
        "surrenale",
        "branche",
        "portale",
        "hepatique",
        "testicule",
        "sein",
        "membre",
    }
)
OPPOSITE = {"left": "right", "right": "left"}
EXAM_NOUNS = ("echographi", "echo", "exploration", "imagerie")
EXAM_REACH = 4  # "échographie cardiaque , rénale", "échographie abdomino - rénale"
ADJECTIVE_ENDINGS = ("ale", "al", "aque", "ique", "aire", "abdomino", "abdomnio", "pelvienne")
PRONOUNS = frozenset({"il", "elle", "celui-ci", "celle-ci"})  # a follow-up about the kidney just described
SIDE_ADVERBIAL_STARTS = frozenset(
    (*prefix, side)
    for side in ("droite", "gauche", "droit")
    for prefix in (("a",), ("du", "cote"), ("cote",))
)


def laterality(norms: Sequence[str], concepts: Iterable[Concept], organ: Organ) -> str | None:
    """left/right/both, 'contralateral' or 'homolateral', from the sentence alone; None: no side named."""
    if not organ.paired:
        return None
    sides = {organ.side_cuis[c.cui] for c in concepts if c.cui in organ.side_cuis}
    sides |= {"both" for c in concepts if c.norm in organ.plural_terms}
    relative = None
    for i, token in enumerate(norms):
        if token in {"d", "g"} and i > 0 and norms[i - 1] in SIDED_NOUNS:
            token = "rd" if token == "d" else "rg"  # "rein G"
        if (token in RIGHT_WORDS or token in LEFT_WORDS) and OTHER_SIDED & set(norms[max(0, i - 2) : i]):
            continue
        if token in RIGHT_WORDS:
            sides.add("right")
        elif token in LEFT_WORDS:
            sides.add("left")
        elif (
            token.startswith(BOTH_PREFIXES)
            or (token in ("deux", "2") and i + 1 < len(norms) and norms[i + 1] in BOTH_NOUNS)
            or (token == "part" and tuple(norms[i : i + len(BOTH_PHRASE)]) == BOTH_PHRASE)
            or (token in ONE_PER_KIDNEY_PLURALS and organ.name == "kidney")
        ):
            sides.add("both")
        elif token in CONTRALATERAL:
            relative = "contralateral"
        elif token in HOMOLATERAL:
            relative = "homolateral"
    if "both" in sides or {"left", "right"} <= sides:
        return "both"
    if sides:
        return sides.pop()
    return relative


def resolve(side: str | None, last: str | None) -> str | None:
    """A relative side against the last side stated; other sides unchanged."""
    if side == "contralateral":
        return OPPOSITE.get(last or "")
    if side == "homolateral":
        return last if last in OPPOSITE else None
    return side


def opens_side_block(norms: Sequence[str]) -> bool:
    """ "À gauche, ...", "Du côté droit, ...": a sentence-initial adverbial opens a block of that side."""
    head = tuple(norms[:3])
    return (
        head[:1] in SIDE_ADVERBIAL_STARTS
        or head[:2] in SIDE_ADVERBIAL_STARTS
        or head in SIDE_ADVERBIAL_STARTS
    )


def inherited(
    organ: str,
    scope_side: dict[str, str],
    last: dict[str, str],
    last_finding: dict[str, bool],
    described: dict[str, set[str]],
    asserts_finding: bool = False,
) -> str | None:
    """Rules 2-3 for a sentence naming no side: the scope label's side; after both sides were described,
    both, unless the last sided sentence asserted a finding that this one (`asserts_finding`) goes on
    describing; else the last side."""
    if organ in scope_side:
        return scope_side[organ]
    continues_finding = last_finding.get(organ, False) and asserts_finding
    if described.get(organ, set()) >= {"left", "right"} and not continues_finding:
        return "both"
    return last.get(organ)


def about_kidneys(sent: SentenceAnnotation) -> bool:
    """Rule 4, a sentence naming no side is about both kidneys when it examines them, names only the
    urinary tract, or, negative or normal, says "rénal" of the kidneys in general ("aucune anomalie
    rénale")."""
    kidney = ORGANS["kidney"].cuis
    generic = [c.norm in RENAL_FORMS for c in sent.concepts if c.cui in kidney]
    return (
        examines_kidneys(sent.norms)
        or (sent.abnormal is False and bool(generic) and all(generic))
        or (not generic and names_urinary_tract(sent.norms))
    )


def examines_kidneys(norms: Sequence[str]) -> bool:
    """ "L'échographie rénale était normale", "une échographie cardiaque, rénale, ...", "échographie
    abdomino-rénale": an exam of the kidneys, so of both when no side is said."""
    for i, token in enumerate(norms):
        if token.startswith(EXAM_NOUNS):
            reach = norms[i + 1 : i + 1 + EXAM_REACH]
            for word in reach:
                if word in RENAL_FORMS:
                    return True
                if not (word in (",", "-", "et") or word.endswith(ADJECTIVE_ENDINGS)):
                    break
    return False


class LateralityComponent:
    """`usconvirt.laterality`: sets `span._.laterality` on every sentence (after `usconvirt.context` and
    `usconvirt.abnormality`, whose verdict rule 3 reads)."""

    def __init__(self, nlp: Pipeline | None = None, name: str = "usconvirt.laterality"):
        self.name = name

    def __call__(self, doc: Doc) -> Doc:
        block: dict[str, str] = {}  # organ -> side of the "À gauche, ..." block under way
        last: dict[str, str] = {}  # organ -> last side stated in the current scope or paragraph
        last_finding: dict[str, bool] = {}  # organ -> whether that last sided sentence asserted a finding
        described: dict[str, set[str]] = {}  # organ -> sides described in the scope or paragraph
        report_last: dict[str, str] = {}  # organ -> last side in the report, for "controlatéral"
        for sent in doc._.sentences:
            if sent.scope_start:
                last, last_finding, described, block = {}, {}, {}, {}
            sides = {}
            follow_up = bool(sent.norms) and sent.norms[0] in PRONOUNS
            for name in sent.organs:
                organ = ORGANS[name]
                own = resolve(laterality(sent.norms, sent.concepts, organ), report_last.get(name))
                scope_side = {**sent.scope_side, **block}
                if follow_up and name in last:
                    scope_side[name] = last[name]  # "Il présente un kyste": the kidney just described
                sides[name] = (
                    own
                    or inherited(name, scope_side, last, last_finding, described, sent.abnormal is True)
                    or sent.scope_plural.get(name)
                    or ("both" if organ.name == "kidney" and about_kidneys(sent) else "unspecified")
                )
                if own in ("left", "right", "both"):
                    last[name] = report_last[name] = own
                    last_finding[name] = sent.abnormal is True
                    described.setdefault(name, set()).update(("left", "right") if own == "both" else (own,))
                    if opens_side_block(sent.norms):
                        block[name] = own
                    else:
                        block.pop(name, None)
            sent.laterality = sides
        return doc


registry.factory.register("usconvirt.laterality", assigns=["span._.laterality"])(LateralityComponent)
