"""The retrained WordPiece tokenizer, the CamemBERT text encoder (tiny, offline) and the ConVIRT model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from usconvirt.models.convirt import ConVIRTConfig, create_convirt, load_convirt, save_convirt
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.text_encoder import TextEncoderConfig, create_text_encoder, pool, resize_for_tokenizer
from usconvirt.text.tokenizer import train_tokenizer

REPORTS = [
    "Rein droit de taille normale, sans dilatation des cavités pyélocalicielles.",
    "Rein gauche : kyste cortical simple de 12 mm au pôle supérieur.",
    "Foie homogène, vésicule alithiasique. Reins de taille normale.",
    "Pas d'épanchement. Vessie en réplétion, à paroi fine.",
] * 3


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer(REPORTS, out, vocab_size=150, min_frequency=1)
    return out


def test_tokenizer_round_trip(tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = "Rein gauche : kyste cortical simple de 12 mm."
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<s>") and ids[-1] == tok.convert_tokens_to_ids("</s>")
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.pad_token == "<pad>" and tok.mask_token == "<mask>"
    assert len(tok) <= 150


def test_tokenizer_options_normalise_text(tmp_path: Path) -> None:
    tok = train_tokenizer(REPORTS, tmp_path / "t", vocab_size=150, min_frequency=1, lowercase=True,
                          strip_accents=True)
    assert tok.decode(tok("Cavités PYÉLOCALICIELLES")["input_ids"], skip_special_tokens=True) == \
        "cavites pyelocalicielles"


@pytest.mark.parametrize("pooling", ["cls", "mean", "max"])
def test_pooling_ignores_padding(pooling: str) -> None:
    hidden = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    padded = hidden.clone()
    padded[0, 3:] = 100.0
    assert torch.allclose(pool(hidden, mask, pooling), pool(padded, mask, pooling))
    if pooling == "mean":
        assert torch.allclose(pool(hidden, mask, pooling)[0], hidden[0, :3].mean(0))


def test_freezing_embeddings_and_first_layers(tokenizer_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = TextEncoderConfig(name="tiny", freeze_embeddings=True, freeze_layers=1)
    encoder = create_text_encoder(config, tok)
    model = encoder.model
    assert not any(p.requires_grad for p in model.embeddings.parameters())
    assert not any(p.requires_grad for p in model.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in model.encoder.layer[1].parameters())
    batch = tok(["Rein droit.", "Kyste cortical du rein gauche."], padding=True, return_tensors="pt")
    assert encoder(batch["input_ids"], batch["attention_mask"]).shape == (2, encoder.out_dim)


def test_new_token_embeddings_start_from_old_sub_tokens(tmp_path: Path) -> None:
    original = train_tokenizer(REPORTS, tmp_path / "old", vocab_size=60, min_frequency=1)
    new = train_tokenizer(REPORTS, tmp_path / "new", vocab_size=150, min_frequency=1)
    model = create_text_encoder(TextEncoderConfig(name="tiny", freeze_layers=0), original).model
    old = model.get_input_embeddings().weight.detach().clone()
    resize_for_tokenizer(model, new, original)
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == len(new)
    # a special token keeps its role's row; a word the old vocabulary lacks is the mean of its old pieces
    assert torch.equal(emb[new.pad_token_id], old[original.pad_token_id])
    word = next(t for t in new.get_vocab() if len(t) > 4 and not t.startswith("##")
                and t not in original.get_vocab())
    pieces = original(word, add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1
    assert torch.allclose(emb[new.convert_tokens_to_ids(word)], old[pieces].mean(0))


def test_convirt_save_load_round_trip(tokenizer_dir: Path, tmp_path: Path) -> None:
    config = ConVIRTConfig(image=ImageEncoderConfig(arch="tiny"), text=TextEncoderConfig(name="tiny"),
                           proj_dim=8, image_size=32)
    model = create_convirt(config, AutoTokenizer.from_pretrained(tokenizer_dir)).eval()
    images, texts = torch.rand(3, 1, 32, 32), ["Rein droit normal.", "Kyste cortical.", "Foie."]
    with torch.no_grad():
        before_images, before_texts = model.encode_images(images), model.encode_texts(texts)
    save_convirt(model, tmp_path / "pretrain")
    loaded = load_convirt(tmp_path / "pretrain")
    with torch.no_grad():
        after_images, after_texts = loaded.encode_images(images), loaded.encode_texts(texts)
    assert after_images.shape == (3, 8) and after_texts.shape == (3, 8)
    assert torch.allclose(after_images.norm(dim=1), torch.ones(3))
    assert torch.allclose(before_images, after_images, atol=1e-5)
    assert torch.allclose(before_texts, after_texts, atol=1e-5)
    assert loaded.image_size == 32


def test_cli_tokenizer_trains_on_pretraining_reports_only(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from usconvirt.cli import app

    root = tmp_path / "ds"
    root.mkdir()
    (root / "exams.csv").write_text("exam_id,patient_id,report\nA,p1,Rein droit normal.\n"
                                    "B,p2,Angiomyolipome hyperéchogène.\n", encoding="utf-8")
    (root / "images.csv").write_text("image_id,exam_id,path\n", encoding="utf-8")
    (tmp_path / "split.csv").write_text("exam_id,patient_id,part\nA,p1,pretrain\nB,p2,test\n")
    out = tmp_path / "tokenizer"
    result = CliRunner().invoke(app, ["tokenizer", "--dataset", str(root), "--out", str(out),
                                      "--split", str(tmp_path / "split.csv"), "--vocab-size", "100",
                                      "--min-frequency", "1"])
    assert result.exit_code == 0, result.output
    assert "trained on 1 reports" in result.output
    vocab = AutoTokenizer.from_pretrained(out).get_vocab()
    assert "Rein" in vocab and "Angiomyolipome" not in vocab  # the test exam's report stays unseen
