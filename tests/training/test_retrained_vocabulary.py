"""A retrained WordPiece vocabulary trains its word embeddings even when embeddings are 'frozen'."""

from __future__ import annotations

from pathlib import Path

from usconvirt.models.text_encoder import TextEncoderConfig, create_text_encoder
from usconvirt.text.tokenizer import train_tokenizer

REPORTS = ["Rein droit de taille normale.", "Kyste cortical du rein gauche.", "Lithiase rénale droite.",
           "Dilatation des cavités pyélocalicielles.", "Reins normaux, bien différenciés."] * 4


def test_word_embeddings_train_when_the_vocabulary_was_rebuilt(tmp_path: Path) -> None:
    original = train_tokenizer(REPORTS, tmp_path / "pretrained", vocab_size=60, min_frequency=1)
    base = create_text_encoder(TextEncoderConfig(name="tiny", freeze_layers=0), original)
    base.model.save_pretrained(tmp_path / "pretrained")  # a "pre-trained" model with its own tokenizer
    retrained = train_tokenizer(REPORTS, tmp_path / "new", vocab_size=150, min_frequency=1)
    config = TextEncoderConfig(name=str(tmp_path / "pretrained"), freeze_embeddings=True, freeze_layers=1)
    model = create_text_encoder(config, retrained).model
    assert model.get_input_embeddings().weight.requires_grad
    assert not model.embeddings.position_embeddings.weight.requires_grad
    assert not any(p.requires_grad for p in model.encoder.layer[0].parameters())
    same = create_text_encoder(config, original).model  # the model's own vocabulary: frozen as asked
    assert not same.get_input_embeddings().weight.requires_grad
