"""The text stages' settings (organ sentences, tokenizer), importable without EDS-NLP or transformers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from usconvirt.config import COUNT, NOT_NEGATIVE, SHARE
from usconvirt.text.concepts import TaggerOptions
from usconvirt.text.organs import ORGANS, organs_for


@dataclass
class SentenceConfig:
    """How organ sentences are found; the defaults reproduce the paper's rule on the shipped subset."""

    organ: str = field(default="kidney", metadata={"choices": (*ORGANS, "all")})
    # eds (EDS-NLP terminology matching) or quickumls (the paper's tool, [umls] extra)
    backend: Literal["eds", "quickumls"] = "eds"
    umls_dir: str | None = None  # a full UMLS release (MRCONSO.RRF, MRSTY.RRF); None: the shipped subset
    semantic_types: tuple[str, ...] = ("T023",)  # "Body Part, Organ, or Organ Component"
    include_findings: bool = True  # organ-specific findings (hydronephrosis, kidney calculi) select too
    use_headings: bool = True  # a sentence under "REINS :" belongs to the kidney
    carry_subject: bool = True  # a follow-up sentence naming no organ continues the previous one's
    # renal function and lab values ("insuffisance rénale", créatinine) are no kidney sentence unless kept
    keep_renal_function: bool = False
    qualifier: Literal["rules", "eds"] = "rules"  # negation: rules (qualifiers.py) or eds.negation/hypothesis
    term_matcher: Literal["exact", "simstring"] = "exact"  # eds backend: on normalised text, or fuzzy
    # quickumls / simstring similarity threshold
    threshold: float = field(default=0.7, metadata={"range": SHARE})
    # quickumls / simstring: longest n-gram in tokens
    window: int = field(default=5, metadata={"range": COUNT})
    similarity: Literal["jaccard", "dice", "cosine", "overlap"] = "jaccard"  # quickumls / simstring
    # quickumls: shortest match in characters
    min_match_length: int = field(default=3, metadata={"range": NOT_NEGATIVE})
    cache_dir: str | None = None  # QuickUMLS index cache; None: ~/.cache/usconvirt
    batch_size: int = field(default=256, metadata={"range": COUNT})  # reports per nlp.pipe batch

    def tagger_options(self) -> TaggerOptions:
        organs_for(self.organ)  # fail early on an unknown organ
        # every organ's findings are tagged, so that a sentence naming another organ inherits no heading
        findings = sorted({c for o in ORGANS.values() for c in o.finding_cuis})
        if not self.include_findings:
            findings = []
        return TaggerOptions(
            backend=self.backend,
            umls_dir=None if self.umls_dir is None else str(self.umls_dir),
            semantic_types=tuple(self.semantic_types),
            extra_cuis=tuple(findings),
            term_matcher=self.term_matcher,
            threshold=self.threshold,
            window=self.window,
            similarity=self.similarity,
            min_match_length=self.min_match_length,
            cache_dir=None if self.cache_dir is None else str(self.cache_dir),
            qualifier=self.qualifier,
            carry_subject=self.carry_subject,
            use_headings=self.use_headings,
            keep_renal_function=self.keep_renal_function,
        )


@dataclass
class TokenizerConfig:
    """The pipeline's `tokenizer` section and `usconvirt tokenizer`'s flags."""

    vocab_size: int = field(default=16000, metadata={
        "range": COUNT, "help": "WordPiece vocabulary size, specials included."})
    lowercase: bool = field(default=False, metadata={"help": "Lower-case the text before tokenising."})
    # accents carry meaning in French
    strip_accents: bool = field(default=False, metadata={"help": "NFD-normalise and drop accents."})
    min_frequency: int = field(default=2, metadata={
        "range": NOT_NEGATIVE, "help": "Fewest occurrences for a merged token."})
    max_length: int = field(default=512, metadata={"range": COUNT})
