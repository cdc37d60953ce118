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
