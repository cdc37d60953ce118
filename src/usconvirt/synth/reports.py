"""French ultrasound reports consistent with an exam's ground truth, in several radiologists' styles.

A report has an indication, a technique, per-organ findings and a conclusion. Each style (prose,
'REINS :' headings, bullet lists) and each radiologist's habits (abbreviations RD/RG/CPC, cm or mm,
dropped accents) vary the surface; every finding has many paraphrases. A kidney finding is always
stated with its side and without a negation in the same clause, so it can be parsed back.

The words are data: `resources/synth/report_phrases.yaml` holds every phrase, template and habit
probability; this module decides what to say from the exam's truth and draws the wording. Every draw
goes through the report's generator in a fixed order, so a seed gives the same reports.
"""

from __future__ import annotations

import string
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import yaml

from usconvirt.errors import InputError
from usconvirt.synth.exam import ExamState, KidneyState

PHRASEBOOK = "resources/synth/report_phrases.yaml"
ORGAN_ORDER = ("liver", "gallbladder", "pancreas", "spleen", "aorta", "kidney", "bladder")
MAY_BE_MENTIONED_UNIMAGED = ("pancreas", "aorta", "bladder")


@cache
def _shipped_phrasebook() -> dict[str, Any]:
    return yaml.safe_load(files("usconvirt").joinpath(PHRASEBOOK).read_text(encoding="utf-8"))


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` laid over it: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merged(base[key], value) if isinstance(value, dict) and key in base else value
    return out


@cache
def phrasebook(style: str = "varied") -> dict[str, Any]:
    """The shipped phrasebook in a report style (its `report_styles` entry laid over the rest)."""
    book = _shipped_phrasebook()
    styles = book["report_styles"]
    if style not in styles:
        raise InputError(f"unknown report style '{style}'; expected one of {', '.join(styles)}",
                         field="report_style")
    return _merged(book, styles[style])


@dataclass(frozen=True)
class Radiologist:
    """A writer's habits, fixed for a whole report."""

    style: str
    abbreviate: bool
    unit_mm: bool
    drop_accents: bool


def french_number(value: float, decimals: int = 1) -> str:
    """12.5 -> '12,5' (French decimal comma)."""
    return f"{value:.{decimals}f}".replace(".", ",")


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class _Fields(string.Formatter):
    """str.format where a callable field is called at each occurrence (a fresh draw), left to right."""

    def get_value(self, key: int | str, args: Any, kwargs: dict[str, Any]) -> Any:
        value = super().get_value(key, args, kwargs)
        return value() if callable(value) else value


_FIELDS = _Fields()


class _Writer:
    """Draws paraphrases for one report; every choice goes through the report's generator."""

    def __init__(self, rng: np.random.Generator, doc: Radiologist, book: dict[str, Any]) -> None:
        self.rng, self.doc = rng, doc
        self.book = book
        self.words = self.book["vocabulary"]
        self.habits = self.book["habits"]

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def render(self, templates: list[str], **fields: Any) -> list[str]:
        """Every template filled, in order: draws happen as an f-string list would make them."""
        return [_FIELDS.format(t, **fields) for t in templates]

    def choose(self, templates: list[str], **fields: Any) -> str:
        return self.pick(self.render(templates, **fields))

    def size(self, cm: float) -> str:
        if self.doc.unit_mm:
            return f"{round(cm * 10)} mm"
        return f"{french_number(cm)} cm"

    def kidney_name(self, side: str, article: bool = True) -> str:
        if self.doc.abbreviate and self.rng.random() < self.habits["abbreviated_kidney_name"]:
            return self.words["kidney_abbreviation"][side]
        return self.words["kidney_name_with_article" if article else "kidney_name"][side]

    def of_kidney(self, side: str) -> str:
        if self.doc.abbreviate and self.rng.random() < self.habits["abbreviated_of_kidney"]:
            return self.words["of_kidney_abbreviation"][side]
        return self.pick(self.words["of_kidney"][side])

    def cavities(self) -> str:
        if self.doc.abbreviate:
            return self.words["cavities_abbreviation"]
        return self.pick(self.words["cavities"])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _options(entries: list[str | dict[str, str]], conditions: dict[str, bool]) -> list[str]:
    """The templates of a list whose `when` condition holds (plain strings always do)."""
    return [e if isinstance(e, str) else e["text"] for e in entries
            if isinstance(e, str) or conditions[e["when"]]]


def _normal_kidney(w: _Writer, kidney: KidneyState) -> str:
    of_side = w.of_kidney(kidney.side)
    name = _cap(w.kidney_name(kidney.side))
    bare = _cap(w.kidney_name(kidney.side, article=False))
    return w.choose(w.book["normal_kidney"], of_side=of_side, Name=name, Bare=bare,
                    size=w.size(kidney.length_cm), cavities=w.cavities)


def _location(w: _Writer, kidney: KidneyState, feminine: bool) -> str:
    """' polaire supérieur', ' médio-rénal'... from the largest lesion's position along the kidney."""
    if not kidney.lesions:
        return ""
    u = max(kidney.lesions, key=lambda lesion: lesion.radius).u / (kidney.length_cm / 2)
    where = "upper" if u > 0.3 else "lower" if u < -0.3 else "middle"
    return f" {w.words['location'][where]}{'e' if feminine else ''}"


def _noun_phrases(w: _Writer, kidney: KidneyState) -> list[str]:
    """Indefinite noun phrases for a kidney finding, to be framed by `_framed`."""
    of_side = w.of_kidney(kidney.side)
    big = max(kidney.lesions, key=lambda lesion: lesion.radius) if kidney.lesions else None
    fields: dict[str, Any] = {
        "of_side": of_side, "size": w.size(2 * big.radius) if big else w.size(kidney.length_cm),
        "loc_m": _location(w, kidney, False), "loc_f": _location(w, kidney, True),
        "side_adjective": w.words["side_adjective"][kidney.side], "grade": kidney.grade,
        "cavities": w.cavities}
    if big is not None:
        fields["mm"] = f"{round(big.radius * 20)} mm"
    if kidney.finding == "hydronephrosis":
        fields["adjective"] = w.pick(w.book["hydronephrosis_adjectives"][kidney.grade])
    return w.render(w.book["noun_phrases"].get(kidney.finding, []), **fields)


def _framed(w: _Writer, phrase: str) -> str:
    """Put a noun phrase in a sentence: 'On note un kyste...', 'Présence d'un kyste...', 'Kyste...'."""
    return w.choose(w.book["framed"], phrase=phrase, Bare=_cap(phrase.split(" ", 1)[1]))


def _abnormal_kidney(w: _Writer, kidney: KidneyState) -> str:
    """One sentence stating the kidney's finding with its side: a set phrase or a framed noun phrase."""
    phrases = _noun_phrases(w, kidney)
    if phrases and w.rng.random() < w.habits["framed_noun_phrase"]:
        return _framed(w, w.pick(phrases))
    of_side = w.of_kidney(kidney.side)
    name = w.kidney_name(kidney.side)
    finding, lesions = kidney.finding, kidney.lesions
    big = max(lesions, key=lambda lesion: lesion.radius) if lesions else None
    fields: dict[str, Any] = {"of_side": of_side, "Name": _cap(name), "count": len(lesions),
                              "side_adjective": w.words["side_adjective"][kidney.side]}
    conditions = {"several": len(lesions) > 1, "small_stone": big is not None and big.radius < 0.45,
                  "large_stone": big is not None and big.radius >= 0.45}
    if finding == "cyst":
        fields |= {"size": w.size(2 * big.radius), "pole": w.words["pole"]["upper" if big.u > 0 else "lower"]}
    elif finding == "stone":
        fields |= {"size": f"{round(big.radius * 20)} mm", "calyx": lambda: w.pick(w.book["calyces"])}
    elif finding == "hydronephrosis":
        adjectives = w.book["abnormal_adjectives"][kidney.grade]
        fields |= {"grade": kidney.grade, "adjective": lambda: w.pick(adjectives), "cavities": w.cavities(),
                   "pyelon_mm": round(8 + 9 * kidney.grade)}
    elif finding == "atrophy":
        fields["size"] = w.size(kidney.length_cm)
    elif finding in ("mass", "angiomyolipoma"):
        fields["size"] = w.size(2 * lesions[0].radius)
    templates = w.book["abnormal_kidney"].get(finding, w.book["abnormal_kidney"]["absent"])
    return w.choose(_options(templates, conditions), **fields)


def kidney_sentences(w: _Writer, exam: ExamState) -> list[str]:
    """One or two sentences per kidney; the finding sentence names its side."""
    right, left = exam.kidneys["right"], exam.kidneys["left"]
    if not right.abnormal and not left.abnormal and w.rng.random() < w.habits["both_kidneys_in_one_sentence"]:
        both = w.book["both_kidneys_normal"]
        sizes = both["sizes_abbreviated" if w.doc.abbreviate else "sizes"].format(
            right=w.size(right.length_cm), left=w.size(left.length_cm))
        return [w.choose(both["sentences"], sizes=sizes, cavities=w.cavities)]
    out = []
    for side in ("right", "left"):
        kidney = exam.kidneys[side]
        if kidney.abnormal:
            out.append(_abnormal_kidney(w, kidney))
            if (kidney.finding not in ("absent", "hydronephrosis")
                    and w.rng.random() < w.habits["no_dilatation_after_finding"]):
                out.append(_FIELDS.format(w.book["no_dilatation"], cavities=w.cavities,
                                          of_side=lambda side=side: w.of_kidney(side)))
        else:
            out.append(_normal_kidney(w, kidney))
    return out


def organ_sentences(w: _Writer, exam: ExamState, organ: str) -> list[str]:
    """Sentences about a non-kidney organ: one for its state, then sometimes the organ's `extra`."""
    entry = w.book["organs"].get(organ)
    if entry is None:
        return []
    state = {"liver": exam.liver, "gallbladder": exam.gallbladder,
             "spleen": "splenomegaly" if exam.spleen == "splenomegaly" else "normal"}.get(organ, "normal")
    sentence = w.choose(entry["states"][state], span=w.size(exam.liver_span_cm),
                        nodule=w.size(exam.nodule_cm), stone_mm=round(exam.stone_mm),
                        size=w.size(exam.spleen_cm), aorta_mm=round(exam.aorta_mm))
    extra = entry.get("extra")
    return [sentence] + ([extra["text"]] if extra and w.rng.random() < extra["probability"] else [])


def _conclusion(w: _Writer, exam: ExamState) -> list[str]:
    book = w.book["conclusion"]
    items = [_abnormal_kidney(w, exam.kidneys[side]) for side in ("right", "left")
             if exam.kidneys[side].abnormal]
    states = {"liver": exam.liver, "gallbladder": exam.gallbladder, "spleen": exam.spleen}
    items += [sentences[states[organ]] for organ, sentences in book["findings"].items()
              if states[organ] in sentences]
    return items or [w.pick(book["normal"])]


def _layout(book: dict[str, Any], style: str, sections: list[tuple[str, list[str]]], conclusion: list[str],
            indication: str, technique: str) -> str:
    """The report page of a layout style from its findings per organ and its conclusion."""
    layout = book["layouts"][style]
    if "section" in layout:
        parts = [layout["section"].format(heading=book["headings"][o], sentences=" ".join(s))
                 for o, s in sections]
    else:
        parts = [layout["sentence"].format(sentence=s) for _, sentences in sections for s in sentences]
    ending = layout["conclusion_join"].join(layout["conclusion_item"].format(sentence=c) for c in conclusion)
    return layout["text"].format(indication=indication, technique=technique, body=layout["join"].join(parts),
                                 conclusion=ending)


def write_report(
    rng: np.random.Generator, exam: ExamState, imaged: set[str], mention_unimaged: float, omit_imaged: float,
    report_style: str = "varied",
) -> str:
    """The exam's French report in a report style; `imaged` is the set of organs with at least one frame."""
    book = phrasebook(report_style)
    habits, styles = book["habits"], book["styles"]
    doc = Radiologist(
        style=styles[int(rng.integers(len(styles)))],
        abbreviate=rng.random() < habits["abbreviate"],
        unit_mm=rng.random() < habits["unit_mm"],
        drop_accents=rng.random() < habits["drop_accents"],
    )
    w = _Writer(rng, doc, book)
    organs = [o for o in ORGAN_ORDER if o in imaged or (o == "gallbladder" and exam.gallbladder == "removed")]
    unimaged = [o for o in MAY_BE_MENTIONED_UNIMAGED if o not in imaged]
    if unimaged and rng.random() < mention_unimaged:
        organs.append(unimaged[int(rng.integers(len(unimaged)))])
    optional = [o for o in organs if o != "kidney"]
    if optional and rng.random() < omit_imaged:
        organs.remove(optional[int(rng.integers(len(optional)))])
    if not exam.kidney_abnormal and rng.random() < habits["skip_normal_kidneys"] and "kidney" in organs:
        organs.remove("kidney")
    organs = sorted(set(organs), key=ORGAN_ORDER.index)

    sections = [
        (o, kidney_sentences(w, exam) if o == "kidney" else organ_sentences(w, exam, o)) for o in organs
    ]
    indication, technique = w.pick(book["indications"]), w.pick(book["techniques"])
    text = _layout(book, doc.style, sections, _conclusion(w, exam), indication, technique)
    return strip_accents(text) if doc.drop_accents else text
