import pytest

from usconvirt.text.qualifiers import abnormal
from usconvirt.text.segment import base_nlp


@pytest.fixture(scope="module")
def nlp():
    return base_nlp()


@pytest.mark.parametrize(("sentence", "expected"), [
    ("Pas de dilatation des cavités pyélocalicielles.", False),
    ("Kyste cortical de 15 mm.", True),
    ("Rein droit mesuré à 11 cm.", None),
    ("Rein de taille normale.", False),
    ("Pas de lithiase, mais un kyste de 12 mm.", True),
    ("Pas de dilatation, de lithiase ni de masse.", False),
    ("Rein non dilaté.", False),
    ("Kyste : non.", False),
    ("Lithiase non retrouvée.", False),
    ("Petit rein de 8 cm.", True),
    ("Sans dilatation en amont, lithiase pyélique de 6 mm.", True),
])
def test_abnormal_with_negation(nlp, sentence, expected):
    assert abnormal([t.norm_ for t in nlp(sentence)]) is expected
