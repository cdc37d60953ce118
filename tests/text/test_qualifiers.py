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


# The conventions of qualifiers.py's docstring, one rule per line.
@pytest.mark.parametrize(("sentence", "expected"), [
    ("Kyste simple de 12 mm, Bosniak I.", True),  # a simple cyst is a finding
    ("Dilatation des cavités en régression.", True),  # still there
    ("Angiomyolipome stable.", True),
    ("Image pouvant correspondre à un angiomyolipome, à contrôler.", True),  # hypothesis
    ("Disparition de la dilatation des cavités.", False),  # gone: a cue before the finding
    ("La dilatation a maintenant disparu.", False),  # ... or after it
    ("Régression complète de la pyélectasie.", False),
    ("Pas d'argument en faveur d'une sténose.", False),  # "en faveur" keeps the negation
    ("Pas de dilatation en amont du calcul.", True),  # other "en" still end it
    ("Lame d'épanchement péri-rénal absente.", False),  # post cue beyond hyphen-split tokens
    ("Lithiase non visualisée.", False),
    ("Kyste de 2 cm, dilatation absente.", True),  # the post cue stays in its clause
    ("Rein de 13 cm, en hypertrophie compensatrice.", False),  # an adaptation, not a finding
    ("Colonne de Bertin hypertrophique, variante de la normale.", False),
    ("Rein gauche unique de 12 cm.", None),  # a solitary kidney alone: measurement only
    ("Greffon rénal de 11 cm.", None),  # the graft is the organ, not a finding
    ("Greffon bien différencié, sans dilatation.", False),
    ("Sonde JJ en place.", True),  # post-operative material
    ("Néphrostomie en place.", True),
    ("Formation tissulaire de 3 cm.", True),
    ("Échogénicité augmentée, IR élevé à 0,80.", True),
    ("Néphrolithiase gauche.", True),
    ("Méga-uretère.", True),
    ("Petits reins.", True),  # phrases match by prefix
    ("Perte de différenciation.", True),
    ("Pas de flux tardus parvus.", False),
])
def test_abnormal_conventions(nlp, sentence, expected):
    assert abnormal([t.norm_ for t in nlp(sentence)]) is expected
