"""Text encoder factory: CamemBERT through transformers, from 'camembert-base', a local path or 'tiny'.

When the WordPiece tokenizer is retrained (section 4.1 of the paper, Dadoun et al., ISBI 2023) the
token ids change, so the embedding matrix is rebuilt for the new vocabulary: a token the old vocabulary
also holds keeps its old row, any other token gets the mean of the old embeddings of the sub-tokens the
original tokenizer splits it into.
Those rows are only a starting point, so the word embeddings are trained whenever the vocabulary was
rebuilt, even with `freeze_embeddings` (which then still freezes the position embeddings and their
layer norm): frozen sub-token means would waste the retrained vocabulary.

Pooling follows ConVIRT (Zhang et al., arXiv 2010.00747, section 3: "a BERT encoder followed by a
max-pooling layer over all output vectors"): `max` over the real tokens is the default.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, CamembertConfig, CamembertModel, PreTrainedModel

from usconvirt.errors import InputError
from usconvirt.io import read_json, reading
from usconvirt.models.config import POOLINGS, TextEncoderConfig

log = logging.getLogger(__name__)

META_FILE = "usconvirt_text_encoder.json"
# A few-thousand-parameter CamemBERT for tests and CPU demos; no dropout so runs are reproducible.
# Train it with pooling='mean': at random init (weights ~0.02) attention barely mixes tokens, so the <s>
# state is the same for every text and a 'cls' ConVIRT loss sits at chance for hundreds of steps.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class TextEncoder(nn.Module):
    """Token ids and attention mask -> one pooled vector per text (B, out_dim)."""

    def __init__(self, model: PreTrainedModel, config: TextEncoderConfig) -> None:
        super().__init__()
        if config.pooling not in POOLINGS:
            raise InputError(f"unknown pooling '{config.pooling}', expected one of {', '.join(POOLINGS)}",
                             field="pooling")
        self.model = model
        self.config = config
        self.out_dim = int(model.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.config.pooling)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, H) token states -> (B, H): the <s> token, or the mean or max over real (unpadded) tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooling == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)


def create_text_encoder(config: TextEncoderConfig | None = None, tokenizer=None) -> TextEncoder:
    """Build the encoder; with `tokenizer`, fit its embedding matrix to that tokenizer's vocabulary."""
    config = config or TextEncoderConfig()
    retrained = False  # a vocabulary of the tokenizer's own: its word embeddings must learn
    if config.name == "tiny":
        if tokenizer is None:
            raise InputError("the 'tiny' text encoder needs a tokenizer (`usconvirt tokenizer` makes one)",
                             field="tokenizer")
        model = CamembertModel(CamembertConfig(
            vocab_size=len(tokenizer), max_position_embeddings=config.max_length + 2,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **TINY), add_pooling_layer=False)
    else:
        try:
            model = AutoModel.from_pretrained(config.name, add_pooling_layer=False)
        except OSError as err:
            raise InputError(f"cannot load text encoder '{config.name}' (offline and not cached?): "
                             f"{str(err).splitlines()[0]}") from err
        if tokenizer is not None:
            original = _original_tokenizer(config.name)
            if original is None or tokenizer.get_vocab() != original.get_vocab():
                resize_for_tokenizer(model, tokenizer, original)
                retrained = True
    freeze(model, config.freeze_embeddings, config.freeze_layers, train_word_embeddings=retrained)
    return TextEncoder(model, config).train()  # from_pretrained gives eval mode: dropout would be off


def _original_tokenizer(name: str):
    try:
        return AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        log.warning("original tokenizer of '%s' unavailable (%s): new token embeddings start random",
                    name, str(err).splitlines()[0])
        return None


def resize_for_tokenizer(model: PreTrainedModel, tokenizer, original=None) -> None:
    """Rebuild the input embeddings for `tokenizer`'s ids, initialised from `original`'s embeddings."""
    old = model.get_input_embeddings().weight.detach()
    model.resize_token_embeddings(len(tokenizer))  # mean-initialised rows, then overwritten below
    model.config.pad_token_id = tokenizer.pad_token_id
    if original is None:
        return
    new = model.get_input_embeddings().weight
    with torch.no_grad():
        for token, new_id in tokenizer.get_vocab().items():
            old_ids = old_token_ids(token, tokenizer, original)
            if old_ids:
                new[new_id] = old[old_ids].mean(0)
    model.config.vocab_size = len(tokenizer)


def old_token_ids(token: str, tokenizer, original) -> list[int]:
    """Ids in `original` standing for `token` of `tokenizer`: same special role, same piece, or sub-tokens."""
    roles = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token", "cls_token", "sep_token")
    for role in roles:
        if token == getattr(tokenizer, role, None) and getattr(original, role, None) is not None:
            return [original.convert_tokens_to_ids(getattr(original, role))]
    vocab = original.get_vocab()
    # WordPiece marks word continuations with '##'; SentencePiece (CamemBERT) marks word starts with '▁'.
    word = token[2:] if token.startswith("##") else token
    piece = word if token.startswith("##") else f"\u2581{word}"
    if piece in vocab:
        return [vocab[piece]]
    ids = original(word, add_special_tokens=False)["input_ids"]
    return [i for i in ids if i != original.unk_token_id]


def freeze(model: PreTrainedModel, embeddings: bool, layers: int, *, train_word_embeddings: bool = False,
           ) -> None:
    """Stop gradients into the embeddings and the first `layers` transformer layers; the word embeddings
    stay trainable with `train_word_embeddings` (a retrained vocabulary)."""
    if embeddings:
        model.embeddings.requires_grad_(False)
        model.get_input_embeddings().requires_grad_(train_word_embeddings)
    for layer in model.encoder.layer[:layers]:
        layer.requires_grad_(False)


def save_text_encoder(encoder: TextEncoder, directory: str | Path) -> Path:
    """Save as a transformers model directory plus the pooling settings; `load_text_encoder` reads it."""
    directory = Path(directory)
    encoder.model.save_pretrained(directory)
    (directory / META_FILE).write_text(json.dumps(asdict(encoder.config)))
    return directory


def load_text_encoder(directory: str | Path) -> TextEncoder:
    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise InputError("not a text encoder directory (no config.json)", file=directory)
    meta = read_json(directory / META_FILE, "text encoder file") if (directory / META_FILE).exists() else {}
    config = TextEncoderConfig(**{**meta, "name": str(directory)})
    with reading(directory, "text encoder (config.json, model.safetensors)"):
        model = AutoModel.from_pretrained(directory, add_pooling_layer=False)
    freeze(model, config.freeze_embeddings, config.freeze_layers)
    return TextEncoder(model, config)
