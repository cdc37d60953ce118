"""Organs and their UMLS concept sets: which CUIs make a sentence about an organ, and its side."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.errors import InputError

RIGHT_KIDNEY, LEFT_KIDNEY, BOTH_KIDNEYS = "C0227613", "C0227614", "C0227665"
RENAL_FORMS = ("renal", "renale", "renales", "renaux")  # "rénal" normalised, every inflection


@dataclass(frozen=True)
class Organ:
    """An organ as a set of anatomical CUIs, plus findings that can only be about this organ."""

    name: str
    cuis: frozenset[str]
    finding_cuis: frozenset[str] = frozenset()
    paired: bool = False  # laterality is meaningful (kidneys, ureters)
    side_cuis: dict[str, str] = field(default_factory=dict)  # CUI -> left/right/both
    plural_terms: frozenset[str] = frozenset()  # normalised plural nouns meaning "both sides"


ORGANS: dict[str, Organ] = {
    organ.name: organ
    for organ in (
        Organ(
            "kidney",
            # the kidney and its parts: kidney, right, left, both, renal pelvis, calices, cortex, medulla,
            # and its vessels (renal artery, renal veins: Doppler of the kidney; landmarks.py drops their
            # uses as a landmark for the aorta or the vena cava)
            frozenset(
                {
                    "C0022646",
                    RIGHT_KIDNEY,
                    LEFT_KIDNEY,
                    BOTH_KIDNEYS,
                    "C0227666",
                    "C0022651",
                    "C0022655",
                    "C0022657",
                    "C0035065",
                    "C0035092",
                }
            ),
            # hydronephrosis, kidney calculi, pyelonephritis, kidney diseases
            finding_cuis=frozenset({"C0020295", "C0022650", "C0034186", "C0022658"}),
            paired=True,
            side_cuis={RIGHT_KIDNEY: "right", LEFT_KIDNEY: "left", BOTH_KIDNEYS: "both"},
            plural_terms=frozenset(
                {
                    "reins",
                    "loges renales",
                    "bassinets",
                    "pyelons",
                    "arteres renales",
                    "veines renales",
                    "greffons",
                    "haut appareil",  # the upper urinary tract: both sides unless one is said
                    "haut appareil urinaire",
                }
            ),
        ),
        Organ("ureter", frozenset({"C0041951"}), paired=True, plural_terms=frozenset({"ureteres"})),
        Organ("liver", frozenset({"C0023884"})),
        Organ("gallbladder", frozenset({"C0016976"})),
        Organ("bile_ducts", frozenset({"C0005400", "C0009437"})),
        Organ("spleen", frozenset({"C0037993"})),
        Organ("pancreas", frozenset({"C0030274"})),
        Organ("bladder", frozenset({"C0005682"})),
        Organ("aorta", frozenset({"C0003483", "C0003484"})),
        Organ("prostate", frozenset({"C0033572"})),
        Organ("uterus", frozenset({"C0042149"})),
    )
}


def organs_for(name: str) -> tuple[Organ, ...]:
    """The organs a run tags: one by name, or every organ for 'all'."""
    if name == "all":
        return tuple(ORGANS.values())
    if name not in ORGANS:
        raise InputError(f"unknown organ '{name}'; expected 'all' or one of {sorted(ORGANS)}", field="organ")
    return (ORGANS[name],)
