"""The context, laterality and landmark rules of the text pipeline, one report style at a time."""

import pandas as pd
import pytest

from usconvirt.text import SentenceConfig, extract_sentences
from usconvirt.text.landmarks import landmark_ranges


def kidney_rows(report: str, **options) -> pd.DataFrame:
    exams = pd.DataFrame({"exam_id": ["e"], "report": [report]})
    return extract_sentences(exams, SentenceConfig(**options))


def test_follow_up_sentence_carries_the_subject_and_its_side():
    rows = kidney_rows("Foie normal. Rein droit de 11 cm. Pas de lithiase. Absence d'épanchement.")
    assert rows["text"].tolist() == ["Rein droit de 11 cm.", "Pas de lithiase."]
    assert rows["selected_by"].tolist() == ["concept", "carried"]
    assert rows["laterality"].tolist() == ["right", "right"]
    assert rows["abnormal"].tolist()[1] is False


def test_carrying_can_be_switched_off():
    rows = kidney_rows("Rein droit de 11 cm. Pas de lithiase.", carry_subject=False)
    assert rows["text"].tolist() == ["Rein droit de 11 cm."]


def test_dash_list_under_a_kidney_sentence_ending_in_a_colon():
    rows = kidney_rows(
        "Les reins présentent :\n- une bonne différenciation,\n- une absence de dilatation.\n\n"
        "Vessie normale."
    )
    assert rows["selected_by"].tolist() == ["heading", "heading"]
    assert rows["laterality"].tolist() == ["both", "both"]


def test_side_adverbial_and_contralateral():
    rows = kidney_rows(
        "REINS :\nÀ gauche, dilatation pyélocalicielle.\nLe bassinet mesure 16 mm.\n"
        "Rein controlatéral normal."
    )
    assert rows["laterality"].tolist() == ["left", "left", "right"]
    flags = rows["abnormal"]
    assert flags.iloc[0] and pd.isna(flags.iloc[1]) and not flags.iloc[2]


@pytest.mark.parametrize(
    "report",
    [
        "Anévrisme de l'aorte abdominale sous-rénale de 42 mm.",
        "Collet à 15 mm sous les artères rénales.",
        "Veine cave inférieure perméable jusqu'au confluent des veines rénales.",
        "Loge de néphrectomie gauche libre.",
        "Lame d'épanchement dans l'espace hépato-rénal.",
    ],
)
def test_renal_landmarks_do_not_select(report):
    assert kidney_rows("Rein droit normal.\n" + report)["text"].tolist() == ["Rein droit normal."]


def test_renal_vocabulary_beyond_rein():
    report = (
        "Néphromégalie gauche.\nCalicectasie du groupe supérieur.\nIR à 0,65 au niveau des artères "
        "interlobaires.\nPas d'épanchement périrénal."
    )
    assert len(kidney_rows(report)) == 4


def test_landmark_ranges_cover_the_renal_word():
    assert landmark_ranges(["aorte", "sous", "-", "renale"]) == [(1, 4)]
    assert landmark_ranges(["artere", "renale", "droite", "stenosee"]) == []


def test_generic_sentence_after_both_sides_is_about_both():
    report = "REINS :\n- RD : 11 cm\n- RG : 12 cm\n- Pas de dilatation.\nVessie : pleine.\nPas de résidu."
    rows = kidney_rows(report)
    assert rows["laterality"].tolist() == ["right", "left", "both"]
    assert rows["selected_by"].tolist() == ["concept", "concept", "heading"]


def test_idem_takes_the_previous_verdict():
    rows = kidney_rows("Rein D : 11 cm, pas de DPC.\nRein G : idem.")
    assert rows["abnormal"].tolist() == [False, False]
    assert rows["laterality"].tolist() == ["right", "left"]


def test_exam_title_and_indication():
    rows = kidney_rows("Échographie rénale et vésicale\nIndication : suivi de greffon rénal.\nReins normaux.")
    assert rows["text"].tolist() == ["Indication : suivi de greffon rénal.", "Reins normaux."]
    assert pd.isna(rows["abnormal"].iloc[0]) and not rows["abnormal"].iloc[1]


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        # the pronoun stands for the finding: the follow-up describes it
        ("Kyste cortical gauche de 2 cm. Il est anéchogène, à paroi fine.", [True, True]),
        ("Le rein droit présente deux kystes. Ils sont à paroi fine.", [True, True]),
        ("Rein gauche siège d'une lésion de 9 mm. Elle est homogène.", [True, True]),
        ("RD : kyste de 12 mm.\nIl n'est pas compliqué.", [True, True]),  # the label is not the antecedent
        # ... unless it has gone; the pronoun stands for the kidney; an impersonal "il"
        ("Dilatation pyélique droite. Elle disparaît après la miction.", [True, False]),
        ("Le rein droit présente un kyste. Il est bien différencié.", [True, False]),
        ("Kyste du rein droit. Il n'y a pas de dilatation.", [True, False]),
    ],
)
def test_pronoun_follow_up_of_a_finding(report, expected):
    assert kidney_rows(report)["abnormal"].tolist() == expected


def test_stable_takes_the_previous_verdict():
    rows = kidney_rows("RG : kyste cortical de 15 mm.\nAspect stable.")
    assert rows["abnormal"].tolist() == [True, True]


def test_normal_sentence_after_a_finding_of_the_last_side_is_about_both():
    rows = kidney_rows(
        "Rein droit normal. Calicectasie gauche. Pas de collection périrénale. Ce kyste est cloisonné."
    )
    assert rows["laterality"].tolist()[:3] == ["right", "left", "both"]
    rows = kidney_rows("RD : normal.\nRG : kyste de 2 cm.\nCe kyste est cloisonné.")
    assert rows["laterality"].tolist() == ["right", "left", "left"]  # goes on describing the finding


def test_plural_of_a_part_the_kidney_has_once_means_both():
    assert kidney_rows("Les parenchymes rénaux sont fins.")["laterality"].tolist() == ["both"]


def test_comparison_in_time_is_no_landmark():
    assert landmark_ranges(["stable", "par", "rapport", "au", "precedent", "examen"]) == []
    assert landmark_ranges(["foie", "hyperechogene", "par", "rapport", "au", "cortex", "renal"]) == [(2, 7)]
    rows = kidney_rows("Rein gauche : DPC grade 2. Elle est stable par rapport au dernier contrôle.")
    assert rows["abnormal"].tolist() == [True, True]
