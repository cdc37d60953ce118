"""A WordPiece tokenizer retrained on the reports (section 4.1 of the paper, Dadoun et al., ISBI 2023),
saved as a Hugging Face tokenizer directory.

Special tokens follow CamemBERT (<s>, </s>, <pad>, <unk>, <mask>) and a sequence is `<s> ... </s>`,
so the retrained tokenizer drops into the CamemBERT text encoder after its embeddings are resized.

Training is deterministic across processes: `tokenizers`' WordPiece trainer numbers each `##c` piece in the
order of a hash map seeded per process and breaks ties between equally frequent merges by those numbers,
so the same reports gave a different vocabulary at every run (upstream: "WordPieceTrainer.train_from_iterator
is not deterministic"). We hand it every `##c` piece, sorted, as a reserved token, so their ids and every
later tie are fixed, then rebuild the model from the trained vocabulary with only the real special tokens.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from usconvirt.data.split import exams_in, read_split
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir, check_output_dir
from usconvirt.text.config import TokenizerConfig

log = logging.getLogger(__name__)

# CamemBERT's order, so <s>=0 and <pad>=1 as in RoBERTa-family models.
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
SUBWORD_PREFIX = "##"
# What save_pretrained writes for a fast tokenizer: a folder holding only these is a tokenizer, replaced
# on a rerun without asking; anything else in it is someone's and needs --overwrite.
TOKENIZER_FILES = frozenset({"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})


def _normalizer(lowercase: bool, strip_accents: bool) -> normalizers.Normalizer:
    """NFD + accent stripping when asked (accents carry meaning in French, so off by default), else NFC."""
    steps = [normalizers.NFD(), normalizers.StripAccents()] if strip_accents else [normalizers.NFC()]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


def _wordpiece(lowercase: bool, strip_accents: bool, vocab: dict[str, int] | None = None) -> Tokenizer:
    """The WordPiece pipeline (normaliser, BERT pre-tokeniser, decoder), untrained or over `vocab`."""
    tok = Tokenizer(
        models.WordPiece(
            vocab, unk_token="<unk>", continuing_subword_prefix=SUBWORD_PREFIX, max_input_chars_per_word=100
        )
    )
    tok.normalizer = _normalizer(lowercase, strip_accents)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=SUBWORD_PREFIX)
    if vocab is not None:
        tok.add_special_tokens(list(SPECIAL_TOKENS))
    return tok


def _continuing_pieces(tok: Tokenizer, texts: list[str]) -> list[str]:
    """Every `##c` piece the trainer will create (each character past a word's first), sorted."""
    chars = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    return [SUBWORD_PREFIX + c for c in sorted(chars)]


def train_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    config: TokenizerConfig | None = None,
    *,
    overwrite: bool = False,
    **options,
) -> PreTrainedTokenizerFast:
    """Train WordPiece on `texts` and save it atomically where `AutoTokenizer.from_pretrained` loads it.

    A tokenizer already in `out_dir` is replaced; other contents only with `overwrite`. `options` override
    single fields of `config` (e.g. `vocab_size=2000`).
    """
    out_dir = Path(out_dir)
    overwrite = overwrite or (out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= TOKENIZER_FILES)
    check_output_dir(out_dir, overwrite=overwrite)
    config = dataclasses.replace(config or TokenizerConfig(), **options)
    vocab_size, min_frequency, max_length = config.vocab_size, config.min_frequency, config.max_length
    lowercase, strip_accents = config.lowercase, config.strip_accents
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise InputError("no report text to train the tokenizer on", file=out_dir)
    if vocab_size <= len(SPECIAL_TOKENS):
        raise InputError(f"vocab size {vocab_size} is too small", field="vocab_size")
    tok = _wordpiece(lowercase, strip_accents)
    pieces = _continuing_pieces(tok, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *pieces],
        continuing_subword_prefix=SUBWORD_PREFIX,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok = _wordpiece(lowercase, strip_accents, tok.get_vocab(with_added_tokens=False))
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=max_length,
    )
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        fast.save_pretrained(tmp)
    log.info("trained a WordPiece tokenizer of %d tokens on %d texts", tok.get_vocab_size(), len(texts))
    return fast


def pretraining_reports(dataset, split_file: str | Path | None = None) -> list[str]:
    """Reports of the pre-training exams (part == pretrain in `split_file`), or all without a split."""
    exams = dataset.exams
    if split_file is not None:
        exams = exams[exams["exam_id"].astype(str).isin(exams_in(read_split(split_file), "pretrain"))]
        if exams.empty:
            raise InputError("no exam of the dataset has part == pretrain", file=split_file, field="part")
    return exams["report"].astype(str).tolist()
