"""Shared fixtures for the text stage: the gold set and a session-wide QuickUMLS index cache."""

from __future__ import annotations

from pathlib import Path

import pytest

GOLD = Path(__file__).resolve().parent / "data" / "kidney_gold.txt"


@pytest.fixture(scope="session")
def gold():
    from usconvirt.text.gold import read_gold

    return read_gold(GOLD)


@pytest.fixture(scope="session")
def gold_dev():
    from usconvirt.text.gold import read_gold

    names = ("gold_dev.txt", "gold_dev_b.txt", "gold_dev_c.txt", "gold_dev_d.txt")
    return [read_gold(GOLD.with_name(name)) for name in names]


@pytest.fixture(scope="session")
def quickumls_cache(tmp_path_factory) -> Path:
    """One QuickUMLS index (of the shipped subset) for the whole session."""
    pytest.importorskip("quickumls")
    return tmp_path_factory.mktemp("quickumls-cache")
