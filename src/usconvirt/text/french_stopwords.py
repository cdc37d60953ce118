"""NLTK's French stop-word list, shipped so that QuickUMLS never downloads it (no network at run time)."""

from __future__ import annotations

from pathlib import Path

# The words of nltk_data corpora/stopwords/french (public domain list from the Snowball project).
FRENCH_STOPWORDS = """
au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me même mes moi
mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton tu un une vos
votre vous c d j l à m n s t y été étée étées étés étant étante étants étantes suis es est sommes êtes
sont serai seras sera serons serez seront serais serait serions seriez seraient étais était étions
étiez étaient fus fut fûmes fûtes furent sois soit soyons soyez soient fusse fusses fût fussions
fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai as avons avez ont aurai auras aura
aurons aurez auront aurais aurait aurions auriez auraient avais avait avions aviez avaient eut eûmes
eûtes eurent aie aies ait ayons ayez aient eusse eusses eût eussions eussiez eussent
""".split()


def write_nltk_stopwords(nltk_data: Path) -> Path:
    """Write the list in NLTK's data layout (corpora/stopwords/french) under `nltk_data`."""
    target = nltk_data / "corpora" / "stopwords" / "french"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(FRENCH_STOPWORDS) + "\n", encoding="utf-8")
    return target
