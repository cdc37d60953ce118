"""French report text: sentence segmentation, UMLS concept tagging, organ sentences, qualifiers.

The names below load lazily: `usconvirt.text.tokenizer` must not pay for importing EDS-NLP.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["SentenceConfig", "exam_summary", "extract_sentences", "run_sentences"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("usconvirt.text.sentences"), name)
    raise AttributeError(f"module 'usconvirt.text' has no attribute '{name}'")
