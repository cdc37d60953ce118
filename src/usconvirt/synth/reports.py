"""French ultrasound reports consistent with an exam's ground truth, in several radiologists' styles.

A report has an indication, a technique, per-organ findings and a conclusion. Each style (prose,
'REINS :' headings, bullet lists) and each radiologist's habits (abbreviations RD/RG/CPC, cm or mm,
dropped accents) vary the surface; every finding has many paraphrases. A kidney finding is always
stated with its side and without a negation in the same clause, so it can be parsed back.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from usconvirt.synth.exam import ExamState, KidneyState

STYLES = ("prose", "headings", "bullets")

INDICATIONS = (
    "Douleurs abdominales.",
    "Bilan d'une insuffisance rénale.",
    "Douleurs lombaires.",
    "Bilan hépatique perturbé.",
    "Infection urinaire fébrile.",
    "Hématurie macroscopique.",
    "Contrôle.",
    "Bilan d'une hypertension artérielle.",
    "Altération de l'état général.",
    "Fièvre inexpliquée.",
    "Colique néphrétique.",
    "Bilan pré-thérapeutique.",
    "Cholestase biologique.",
    "Suivi.",
    "Douleurs de l'hypochondre.",
    "Nausées et vomissements.",
)
TECHNIQUES = (
    "Échographie abdominale par voie sous-costale et intercostale.",
    "Examen réalisé par voie abdominale, sonde convexe.",
    "Échographie abdomino-pelvienne.",
    "Étude en mode B.",
    "Échographie abdominale et rénale, patient à jeun.",
    "Examen réalisé dans de bonnes conditions techniques.",
    "Examen gêné par les gaz digestifs.",
)


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


class _Writer:
    """Draws paraphrases for one report; every choice goes through the report's generator."""

    def __init__(self, rng: np.random.Generator, doc: Radiologist) -> None:
        self.rng, self.doc = rng, doc

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def size(self, cm: float) -> str:
        if self.doc.unit_mm:
            return f"{round(cm * 10)} mm"
        return f"{french_number(cm)} cm"

    def kidney_name(self, side: str, article: bool = True) -> str:
        if self.doc.abbreviate and self.rng.random() < 0.7:
            return "RD" if side == "right" else "RG"
        name = "rein droit" if side == "right" else "rein gauche"
        return f"le {name}" if article else name

    def of_kidney(self, side: str) -> str:
        if self.doc.abbreviate and self.rng.random() < 0.6:
            return "du RD" if side == "right" else "du RG"
        return self.pick(["du rein droit", "à droite"] if side == "right" else ["du rein gauche", "à gauche"])

    def cavities(self) -> str:
        return (
            "CPC" if self.doc.abbreviate else self.pick(["cavités pyélocalicielles", "cavités excrétrices"])
        )


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _normal_kidney(w: _Writer, kidney: KidneyState) -> str:
    side = w.of_kidney(kidney.side)
    name = _cap(w.kidney_name(kidney.side))
    bare = _cap(w.kidney_name(kidney.side, article=False))
    size = w.size(kidney.length_cm)
    return w.pick(
        [
            f"{bare} de taille normale mesuré à {size}, bien différencié, "
            f"sans dilatation des {w.cavities()}.",
            f"{name} mesure {size}, d'échostructure normale. Pas de dilatation des {w.cavities()}.",
            f"{name} est de taille et d'aspect normaux ({size}), sans lithiase ni dilatation.",
            f"Bonne différenciation cortico-médullaire {side}, pas d'obstacle.",
            f"{bare} : {size}, contours réguliers, pas de dilatation des {w.cavities()}.",
            f"Épaisseur corticale conservée {side}. Absence de dilatation des {w.cavities()}.",
        ]
    )


def _location(kidney: KidneyState, feminine: bool) -> str:
    """' polaire supérieur', ' médio-rénal'... from the largest lesion's position along the kidney."""
    if not kidney.lesions:
        return ""
    u = max(kidney.lesions, key=lambda lesion: lesion.radius).u / (kidney.length_cm / 2)
    word = "polaire supérieur" if u > 0.3 else "polaire inférieur" if u < -0.3 else "médio-rénal"
    return f" {word}{'e' if feminine else ''}"


def _noun_phrases(w: _Writer, kidney: KidneyState) -> list[str]:
    """Indefinite noun phrases for a kidney finding, to be framed by `_framed`."""
    side = w.of_kidney(kidney.side)
    big = max(kidney.lesions, key=lambda lesion: lesion.radius) if kidney.lesions else None
    size = w.size(2 * big.radius) if big else w.size(kidney.length_cm)
    loc_m, loc_f = _location(kidney, False), _location(kidney, True)
    finding = kidney.finding
    if finding == "cyst":
        return [
            f"un kyste cortical simple{loc_m} {side} de {size}",
            f"une formation kystique{loc_f} {side} de {size}",
            f"un kyste {side} de {size}, sans cloison ni calcification",
            f"un kyste parapyélique {side} de {size}",
        ]
    if finding == "stone":
        mm = f"{round(big.radius * 20)} mm"
        return [
            f"une lithiase{loc_f} {side} de {mm}",
            f"un calcul{loc_m} {side} de {mm}",
            f"un calcul {side} de {mm}, non obstructif",
            f"une lithiase {side} de {mm} avec cône d'ombre",
        ]
    if finding == "hydronephrosis":
        adjective = w.pick(
            {1: ("modérée", "minime"), 2: ("franche", "moyenne"), 3: ("majeure", "sévère")}[kidney.grade]
        )
        return [
            f"une dilatation {adjective} des {w.cavities()} {side}",
            f"une hydronéphrose {side} de grade {kidney.grade}",
            f"une dilatation pyélocalicielle {adjective} {side}",
        ]
    if finding == "atrophy":
        adjective = "droit" if kidney.side == "right" else "gauche"
        return [f"un petit rein {adjective} atrophique de {size}", f"une atrophie rénale {side} ({size})"]
    if finding == "mass":
        return [
            f"une masse{loc_f} {side} de {size}",
            f"une formation tissulaire{loc_f} {side} de {size}",
            f"une lésion solide{loc_f} {side} de {size}",
        ]
    if finding == "angiomyolipoma":
        return [
            f"un angiomyolipome{loc_m} {side} de {size}",
            f"un nodule hyperéchogène {side} de {size} évoquant un angiomyolipome",
        ]
    return []


def _framed(w: _Writer, phrase: str) -> str:
    """Put a noun phrase in a sentence: 'On note un kyste...', 'Présence d'un kyste...', 'Kyste...'."""
    bare = phrase.split(" ", 1)[1]
    return w.pick(
        [
            f"On note {phrase}.",
            f"Présence d'{phrase}.",
            f"Mise en évidence d'{phrase}.",
            f"Il existe {phrase}.",
            f"{_cap(bare)}.",
            f"On retrouve {phrase}.",
        ]
    )


def _abnormal_kidney(w: _Writer, kidney: KidneyState) -> str:
    """One sentence stating the kidney's finding with its side: a set phrase or a framed noun phrase."""
    phrases = _noun_phrases(w, kidney)
    if phrases and w.rng.random() < 0.5:
        return _framed(w, w.pick(phrases))
    side = w.of_kidney(kidney.side)
    name = w.kidney_name(kidney.side)
    finding = kidney.finding
    if finding == "cyst":
        big = max(kidney.lesions, key=lambda lesion: lesion.radius)
        size = w.size(2 * big.radius)
        many = len(kidney.lesions) > 1
        options = [
            f"Kyste cortical simple {side} de {size}.",
            f"Formation kystique simple {side} mesurant {size}, Bosniak I.",
            f"Image anéchogène à paroi fine {side}, de {size}, correspondant à un kyste simple.",
            f"Présence d'un kyste polaire {'supérieur' if big.u > 0 else 'inférieur'} {side} de {size}.",
            f"{_cap(name)} est le siège d'un kyste de {size}.",
        ]
        if many:
            options += [
                f"Plusieurs kystes corticaux simples {side}, le plus volumineux de {size}.",
                f"{len(kidney.lesions)} kystes simples {side}, infracentimétriques à {size}.",
            ]
        return w.pick(options)
    if finding == "stone":
        big = max(kidney.lesions, key=lambda lesion: lesion.radius)
        size = f"{round(big.radius * 20)} mm"
        options = [
            f"Lithiase calicielle {w.pick(['inférieure', 'moyenne', 'supérieure'])} {side} de {size}.",
            f"Image hyperéchogène avec cône d'ombre postérieur {side}, en faveur d'une lithiase de {size}.",
            f"Calcul de {size} {side}.",
            f"Présence d'un calcul rénal {side} mesurant {size}.",
            f"Microlithiase {side}." if big.radius < 0.45 else f"Lithiase pyélique {side} de {size}.",
        ]
        if len(kidney.lesions) > 1:
            options.append(f"Plusieurs lithiases {side}, la plus grosse de {size}.")
        return w.pick(options)
    if finding == "hydronephrosis":
        grade = kidney.grade
        adjective = {
            1: ("modérée", "minime", "discrète"),
            2: ("franche", "moyenne", "nette"),
            3: ("majeure", "importante", "sévère"),
        }[grade]
        cav = w.cavities()
        return w.pick(
            [
                f"Dilatation {w.pick(adjective)} des {cav} {side}.",
                f"Hydronéphrose {side} de grade {grade}.",
                f"Urétéro-hydronéphrose {w.pick(adjective)} {side}.",
                f"Dilatation pyélocalicielle {side} (grade {grade}), sans obstacle visible.",
                f"{_cap(name)} présente une dilatation {w.pick(adjective)} de ses {cav}.",
                f"Distension des {cav} {side}, pyélon mesuré à {round(8 + 9 * grade)} mm.",
            ]
        )
    if finding == "atrophy":
        size = w.size(kidney.length_cm)
        adjective = "droit" if kidney.side == "right" else "gauche"
        return w.pick(
            [
                f"Petit rein {adjective} atrophique mesurant {size}, hyperéchogène et dédifférencié.",
                f"{_cap(name)} est de petite taille ({size}), hyperéchogène, en faveur d'une néphropathie "
                "chronique.",
                f"Atrophie rénale {side} ({size}) avec amincissement cortical.",
                f"Rein {adjective} atrophique, {size}, mal différencié.",
                f"Petit rein {adjective} de {size} à cortex aminci et hyperéchogène.",
            ]
        )
    if finding == "mass":
        size = w.size(2 * kidney.lesions[0].radius)
        return w.pick(
            [
                f"Masse tissulaire hétérogène {side} de {size}, à explorer en TDM.",
                f"Formation solide {side} mesurant {size}, suspecte.",
                f"Lésion tissulaire {side} de {size} déformant les contours.",
                f"Processus expansif {side} de {size}, compléter par un scanner.",
                f"Tumeur rénale probable {side}, {size}.",
            ]
        )
    if finding == "angiomyolipoma":
        size = w.size(2 * kidney.lesions[0].radius)
        return w.pick(
            [
                f"Angiomyolipome {side} de {size}.",
                f"Formation hyperéchogène homogène {side} de {size}, typique d'angiomyolipome.",
                f"Petit angiomyolipome cortical {side} ({size}).",
                f"Image nodulaire hyperéchogène {side} de {size} évoquant un angiomyolipome.",
            ]
        )
    return w.pick(
        [  # absent
            f"Status post-néphrectomie {side}.",
            f"Néphrectomie {side}, loge libre.",
            f"Loge de néphrectomie {side}, sans particularité.",
            f"Antécédent de néphrectomie {side}.",
        ]
    )


def kidney_sentences(w: _Writer, exam: ExamState) -> list[str]:
    """One or two sentences per kidney; the finding sentence names its side."""
    right, left = exam.kidneys["right"], exam.kidneys["left"]
    if not right.abnormal and not left.abnormal and w.rng.random() < 0.35:
        sizes = (
            f"RD {w.size(right.length_cm)}, RG {w.size(left.length_cm)}"
            if w.doc.abbreviate
            else f"droit {w.size(right.length_cm)}, gauche {w.size(left.length_cm)}"
        )
        return [
            w.pick(
                [
                    f"Reins de taille normale ({sizes}), bien différenciés, "
                    f"sans dilatation des {w.cavities()}.",
                    f"Les deux reins sont de taille normale ({sizes}) et bien différenciés. "
                    f"Pas de dilatation des {w.cavities()}.",
                    f"Reins symétriques ({sizes}), d'échostructure normale, sans lithiase ni dilatation.",
                    "Reins sans particularité.",
                ]
            )
        ]
    out = []
    for side in ("right", "left"):
        kidney = exam.kidneys[side]
        if kidney.abnormal:
            out.append(_abnormal_kidney(w, kidney))
            if kidney.finding not in ("absent", "hydronephrosis") and w.rng.random() < 0.5:
                out.append(f"Pas de dilatation des {w.cavities()} {w.of_kidney(side)}.")
        else:
            out.append(_normal_kidney(w, kidney))
    return out


def organ_sentences(w: _Writer, exam: ExamState, organ: str) -> list[str]:
    """Sentences about a non-kidney organ."""
    if organ == "liver":
        span = w.size(exam.liver_span_cm)
        base = {
            "normal": (
                "Foie de taille normale, d'échostructure homogène.",
                f"Foie homogène, flèche de {span}.",
                "Foie de contours réguliers, sans lésion focale.",
                "Le foie est normal.",
            ),
            "steatosis": (
                "Foie hyperéchogène, en faveur d'une stéatose.",
                "Stéatose hépatique diffuse.",
                f"Foie brillant et atténuant, flèche de {span}, aspect de stéatose.",
                "Surcharge stéatosique hépatique homogène.",
            ),
            "nodule": (
                f"Nodule hépatique hyperéchogène de {w.size(exam.nodule_cm)}, évoquant un angiome.",
                f"Lésion focale hépatique de {w.size(exam.nodule_cm)}, à caractériser.",
                f"Formation nodulaire du foie de {w.size(exam.nodule_cm)}.",
            ),
        }[exam.liver]
        return [w.pick(base)] + (["Tronc porte perméable."] if w.rng.random() < 0.4 else [])
    if organ == "gallbladder":
        return [
            w.pick(
                {
                    "normal": (
                        "Vésicule biliaire alithiasique, à paroi fine.",
                        "VB normale.",
                        "Vésicule biliaire sans calcul.",
                        "Vésicule alithiasique.",
                    ),
                    "stones": (
                        f"Vésicule biliaire lithiasique, calcul de {round(exam.stone_mm)} mm.",
                        "Lithiase vésiculaire sans signe de cholécystite.",
                        "Vésicule multilithiasique.",
                        f"Calcul vésiculaire de {round(exam.stone_mm)} mm avec cône d'ombre.",
                    ),
                    "removed": (
                        "Status post-cholécystectomie.",
                        "Cholécystectomie.",
                        "Vésicule non vue (cholécystectomie).",
                    ),
                }[exam.gallbladder]
            )
        ] + (["Voies biliaires non dilatées."] if w.rng.random() < 0.5 else [])
    if organ == "spleen":
        size = w.size(exam.spleen_cm)
        if exam.spleen == "splenomegaly":
            return [
                w.pick(
                    (
                        f"Splénomégalie homogène à {size}.",
                        f"Rate augmentée de taille ({size}).",
                        f"Splénomégalie, flèche splénique de {size}.",
                    )
                )
            ]
        return [
            w.pick(
                (
                    f"Rate de taille normale ({size}).",
                    "Rate homogène.",
                    f"Rate normale, {size}.",
                    "Pas de splénomégalie.",
                )
            )
        ]
    if organ == "pancreas":
        return [
            w.pick(
                (
                    "Pancréas d'échostructure normale.",
                    "Pancréas vu, sans anomalie.",
                    "Pancréas partiellement masqué par les gaz, sans anomalie visible.",
                    "Pas d'anomalie pancréatique décelable.",
                )
            )
        ]
    if organ == "aorta":
        return [
            w.pick(
                (
                    f"Aorte abdominale de calibre normal ({round(exam.aorta_mm)} mm).",
                    "Aorte non anévrysmale.",
                    "Pas d'anévrisme de l'aorte abdominale.",
                )
            )
        ]
    if organ == "bladder":
        return [
            w.pick(
                (
                    "Vessie en réplétion, à paroi fine.",
                    "Vessie à contenu anéchogène.",
                    "Vessie normale.",
                    "Vessie peu remplie, non analysable.",
                )
            )
        ]
    return []


def _conclusion(w: _Writer, exam: ExamState) -> list[str]:
    items = []
    for side in ("right", "left"):
        kidney = exam.kidneys[side]
        if kidney.abnormal:
            items.append(_abnormal_kidney(w, kidney))
    if exam.liver == "steatosis":
        items.append("Stéatose hépatique.")
    if exam.gallbladder == "stones":
        items.append("Lithiase vésiculaire.")
    if exam.spleen == "splenomegaly":
        items.append("Splénomégalie.")
    if not items:
        items.append(
            w.pick(
                (
                    "Échographie abdominale normale.",
                    "Examen sans particularité.",
                    "Pas d'anomalie décelée.",
                    "Absence d'anomalie échographique.",
                )
            )
        )
    return items


ORGAN_HEADINGS = {
    "liver": "FOIE",
    "gallbladder": "VÉSICULE BILIAIRE",
    "pancreas": "PANCRÉAS",
    "spleen": "RATE",
    "aorta": "AORTE",
    "bladder": "VESSIE",
    "kidney": "REINS",
}


def write_report(
    rng: np.random.Generator, exam: ExamState, imaged: set[str], mention_unimaged: float, omit_imaged: float
) -> str:
    """The exam's French report; `imaged` is the set of organs with at least one frame."""
    doc = Radiologist(
        style=STYLES[int(rng.integers(len(STYLES)))],
        abbreviate=rng.random() < 0.4,
        unit_mm=rng.random() < 0.4,
        drop_accents=rng.random() < 0.15,
    )
    w = _Writer(rng, doc)
    organs = [
        o
        for o in ("liver", "gallbladder", "pancreas", "spleen", "aorta", "kidney", "bladder")
        if o in imaged or (o == "gallbladder" and exam.gallbladder == "removed")
    ]
    unimaged = [o for o in ("pancreas", "aorta", "bladder") if o not in imaged]
    if unimaged and rng.random() < mention_unimaged:
        organs.append(unimaged[int(rng.integers(len(unimaged)))])
    optional = [o for o in organs if o != "kidney"]
    if optional and rng.random() < omit_imaged:
        organs.remove(optional[int(rng.integers(len(optional)))])
    if not exam.kidney_abnormal and rng.random() < 0.08:  # some reports skip normal kidneys
        organs.remove("kidney") if "kidney" in organs else None
    order = ("liver", "gallbladder", "pancreas", "spleen", "aorta", "kidney", "bladder")
    organs = sorted(set(organs), key=order.index)

    sections = [
        (o, kidney_sentences(w, exam) if o == "kidney" else organ_sentences(w, exam, o)) for o in organs
    ]
    indication, technique = w.pick(INDICATIONS), w.pick(TECHNIQUES)
    conclusion = _conclusion(w, exam)
    if doc.style == "prose":
        body = " ".join(s for _, sentences in sections for s in sentences)
        text = (
            f"Indication : {indication}\nTechnique : {technique}\n\nRésultats :\n{body}\n\n"
            f"Conclusion :\n{' '.join(conclusion)}"
        )
    elif doc.style == "headings":
        blocks = [f"{ORGAN_HEADINGS[o]} : {' '.join(s)}" for o, s in sections]
        text = (
            f"INDICATION : {indication}\nTECHNIQUE : {technique}\n\n"
            + "\n".join(blocks)
            + f"\n\nCONCLUSION : {' '.join(conclusion)}"
        )
    else:
        lines = [f"- {s}" for _, sentences in sections for s in sentences]
        text = (
            f"Motif : {indication}\n{technique}\n\nCompte rendu :\n"
            + "\n".join(lines)
            + "\n\nConclusion :\n"
            + "\n".join(f"- {c}" for c in conclusion)
        )
    return strip_accents(text) if doc.drop_accents else text
