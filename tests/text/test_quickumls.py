"""The optional [umls] backend: QuickUMLS index built from the shipped RRF files, offline."""

from pathlib import Path

import pandas as pd
import pytest

from usconvirt.text import SentenceConfig, extract_sentences
from usconvirt.text.gold import match_gold, score

pytest.importorskip("quickumls")


@pytest.fixture(scope="module")
def config(quickumls_cache):
    return SentenceConfig(backend="quickumls", cache_dir=str(quickumls_cache))


def test_builds_index_offline_and_tags_kidney(config, monkeypatch):
    import nltk

    def no_download(*args, **kwargs):
        raise AssertionError("QuickUMLS tried to download NLTK data")

    monkeypatch.setattr(nltk, "download", no_download)
    exams = pd.DataFrame({"exam_id": ["a"], "report": ["Foie normal. Rein droit : kyste de 12 mm."]})
    rows = extract_sentences(exams, config)
    assert rows["text"].tolist() == ["Rein droit : kyste de 12 mm."]
    assert rows["laterality"].tolist() == ["right"] and rows["abnormal"].tolist() == [True]
    assert "C0227613" in rows["cuis"].iloc[0]
    (index,) = (Path(config.cache_dir) / "quickumls").iterdir()  # one index, keyed by the RRF hash
    assert (index / "complete.flag").exists() and (index / "language.flag").read_text() == "FRE"


def test_quickumls_gold_f1(config, gold):
    exams, labels = gold
    result = score(match_gold(extract_sentences(exams, config), labels))
    assert result["f1"] >= 0.9
