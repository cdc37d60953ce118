import pytest

from usconvirt.text.segment import base_nlp, sentence_spans


@pytest.fixture(scope="module")
def nlp():
    return base_nlp()


def sentences(nlp, text):
    return [s.text for s in sentence_spans(nlp(text))]


def test_headings_newlines_and_bullets_split(nlp):
    expected = ["REINS :", "Rein droit normal.", "- taille normale", "- pas de dilatation",
                "1) Foie normal.", "2) Rate normale."]
    assert sentences(nlp, "\n".join(expected)) == expected


def test_abbreviations_and_decimal_commas_do_not_split(nlp):
    text = "Rein droit de 11,2 cm, cf. compte rendu du Dr. Martin. Pas de dilatation."
    assert sentences(nlp, text) == ["Rein droit de 11,2 cm, cf. compte rendu du Dr. Martin.",
                                    "Pas de dilatation."]


def test_wrapped_lowercase_line_stays_in_its_sentence(nlp):
    text = "Le rein droit mesure 11 cm et ne présente\npas de dilatation. Vessie normale."
    assert sentences(nlp, text) == ["Le rein droit mesure 11 cm et ne présente\npas de dilatation.",
                                    "Vessie normale."]


def test_offsets_point_into_the_report(nlp):
    text = "  Foie normal.\n\n  Reins : RAS.  "
    doc = nlp(text)
    for span in sentence_spans(doc):
        assert text[span.start_char:span.end_char] == span.text
        assert span.text == span.text.strip()
