"""Rules for clinical prose (case reports, letters, summaries): renal function, kidney-part words,
landmarks, the carried subject in narrative, bladder statements, and the abnormal flag and side there.
Sentences written for these tests, in the style of French clinical cases."""

import pandas as pd
import pytest

from usconvirt.text import SentenceConfig, extract_sentences
from usconvirt.text.gold import read_tagged_text
from usconvirt.text.narrative import report_line
from usconvirt.text.renal_function import function_ranges, states_function
from usconvirt.text.tagger import build_nlp


def kidney_rows(report: str, **options) -> pd.DataFrame:
    exams = pd.DataFrame({"exam_id": ["e"], "report": [report]})
    return extract_sentences(exams, SentenceConfig(**options))


def kidney_texts(report: str, **options) -> list[str]:
    return kidney_rows(report, **options)["text"].tolist()


def test_renal_function_is_no_kidney_sentence_unless_kept():
    report = "Le bilan montrait une insuffisance rénale aiguë avec une créatininémie à 300 µmol/l."
    assert kidney_texts(report) == []
    assert kidney_texts(report, keep_renal_function=True) == [report]
    doc = build_nlp(SentenceConfig().tagger_options())(report)
    assert doc.spans["sentences"][0]._.renal_function is True


def test_function_phrase_reaches_across_an_enumeration_but_not_an_exam():
    norms = "defaillance hemodynamique , respiratoire et renale".split()
    assert function_ranges(norms) == [(0, 6)]
    assert function_ranges("bilan radiologique par echographie renale".split()) == []
    assert not states_function("rein droit de 11 cm".split())


def test_nephropathy_in_a_case_history_is_a_clinical_label():
    assert kidney_texts("Il s'agit d'un homme de 50 ans suivi pour une néphropathie diabétique.") == []
    assert kidney_texts("Conclusion : aspect de néphropathie chronique.") != []


def test_renal_vessels_listed_with_the_aorta_are_described_not_landmarks():
    assert kidney_texts("L'aorte, les artères rénales et iliaques sont perméables.") != []
    assert kidney_texts("Anévrisme de l'aorte abdominale respectant les artères rénales.") == []


def test_a_kidney_finding_beside_renal_function_stays():
    rows = kidney_rows("Hydronéphrose gauche responsable d'une insuffisance rénale obstructive.")
    assert rows["laterality"].tolist() == ["left"]
    assert rows["abnormal"].tolist() == [True]


def test_kidney_part_words_of_another_organ_are_not_the_kidney():
    assert kidney_texts("IRM : atrophie corticale cérébrale et hypersignaux médullaires.") == []
    assert kidney_texts("Absence d'épanchement dans la cavité péritonéale.") == []
    assert kidney_texts("L'IRM montre un hypersignal médullaire en regard de T11.") == []


def test_kidney_part_words_count_after_a_kidney_sentence_or_on_a_report_line():
    assert kidney_texts("Rein gauche de 9 cm. Le cortex est aminci.") == [
        "Rein gauche de 9 cm.",
        "Le cortex est aminci.",
    ]
    assert kidney_texts("Cortex aminci, sinus hyperéchogène.") == ["Cortex aminci, sinus hyperéchogène."]
    # in a narrative past tense, a part word needs its context
    assert kidney_texts("Le patient avait une atrophie corticale connue.") == []


@pytest.mark.parametrize(
    "sentence",
    [
        "Le scanner montrait une masse rétropéritonéale pré-rénale droite de 6 cm.",
        "On retrouvait une adénopathie en situation rétro-rénale gauche.",
        "Une lésion sus pédiculaire rénale droite de 2 cm était visible.",
        "La masse surrénalienne refoulait le pôle supérieur du rein droit.",
        "Masse ovarienne à distance de la vessie, des reins et du foie.",
        "Image en pseudo-rein dans le flanc droit.",
        "Nodule surrénalien gauche de 2 cm au niveau du pôle supérieur du rein gauche.",
    ],
)
def test_kidney_as_landmark_of_another_organ(sentence):
    assert kidney_texts(sentence) == []


def test_narrative_does_not_carry_the_subject():
    report = (
        "Le scanner montrait une masse du rein gauche de 5 cm. "
        "Le patient a été opéré le lendemain, les suites étaient simples. "
        "Il a été revu en consultation."
    )
    assert kidney_texts(report) == ["Le scanner montrait une masse du rein gauche de 5 cm."]
    assert not report_line("le patient a ete opere le lendemain".split())
    assert report_line("pas de lithiase .".split())


def test_a_demonstrative_lesion_continues_across_prose():
    report = (
        "Le scanner montrait une masse du rein gauche de 5 cm. "
        "Une IRM a été réalisée pour préciser le bilan d'extension. "
        "Cette masse était hétérogène après injection de gadolinium."
    )
    rows = kidney_rows(report)
    assert rows["text"].tolist()[-1] == "Cette masse était hétérogène après injection de gadolinium."
    assert rows["laterality"].tolist()[-1] == "left"
    assert rows["abnormal"].tolist()[-1] is True


@pytest.mark.parametrize(
    "report",
    [
        "Hydronéphrose modérée du rein droit. Résidu post-mictionnel non significatif.",
        "Rein droit : hydronéphrose modérée. Résidu post-mictionnel non significatif.",
    ],
)
def test_post_void_residual_is_no_kidney_sentence(report):
    assert kidney_texts(report) == [report.split(". ")[0] + "."]


@pytest.mark.parametrize(
    "sentence, abnormal",
    [
        ("On ne met pas en évidence d'anomalie rénale.", False),
        ("Le scanner sans injection montre un hématome périrénal gauche.", True),
        ("Une malformation rénale est découverte.", True),
        ("Les reins sont normaux, avec un kyste de l'ovaire gauche.", False),
        ("Rein droit non fonctionnel et cavités pyélocalicielles gauches dilatées.", True),
    ],
)
def test_abnormal_flag_in_clinical_prose(sentence, abnormal):
    assert kidney_rows(sentence)["abnormal"].tolist() == [abnormal]


@pytest.mark.parametrize(
    "sentence, kidney",
    [
        ("Pas de dilatation des voies urinaires hautes.", True),
        ("Vessie de lutte sans retentissement sur l'appareil urinaire.", True),
        ("Traitée pour une infection des voies urinaires.", False),
        ("Pas de signe du bas appareil urinaire.", False),
        ("Échographie de l'appareil urinaire : vessie à paroi fine.", False),
    ],
)
def test_the_urinary_tract_as_a_whole(sentence, kidney):
    rows = kidney_rows(sentence)
    assert (not rows.empty) == kidney
    if kidney:
        assert rows["laterality"].tolist() == ["both"]


def test_an_exam_of_the_kidneys_is_about_both():
    assert kidney_rows("L'échographie rénale était normale.")["laterality"].tolist() == ["both"]
    assert kidney_rows("Échographie cardiaque, rénale et transfontanellaire normales.")[
        "laterality"
    ].tolist() == ["both"]


def test_read_tagged_text(tmp_path):
    path = tmp_path / "tagged.txt"
    path.write_text(
        "# comment\n=== d1\nN|Foie normal.\nK:L:1|Kyste du rein gauche.\n"
        "K:B:0|\\nReins normaux.\nA|Biopsie.\n",
        encoding="utf-8",
    )
    exams, gold = read_tagged_text(path)
    report = exams["report"].iloc[0]
    assert report == "Foie normal. Kyste du rein gauche.\nReins normaux. Biopsie."
    assert gold["kind"].tolist() == [".", "k", "k", "h"]
    assert [report[s:e] for s, e in zip(gold["start"], gold["end"], strict=True)] == gold["text"].tolist()
    assert gold["laterality"].tolist()[1:3] == ["left", "both"]
    assert gold["abnormal"].tolist()[1:3] == [True, False]
