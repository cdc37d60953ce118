"""The speed switches: each keeps what the step computes, and pre-training runs and learns with all on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pretrain_fixtures import make_pair_set, tiny_config

from usconvirt.data.augment import AugmentConfig
from usconvirt.errors import InputError
from usconvirt.models.convirt import load_tokenizer
from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder, load_image_encoder
from usconvirt.models.memory_format import standard_layout, use_channels_last
from usconvirt.models.text_encoder import TextEncoderConfig, create_text_encoder
from usconvirt.training.fast_step import pad_tokens, text_buckets
from usconvirt.training.monitoring import build_logger
from usconvirt.training.pretrain import PairCollate, pretrain
from usconvirt.training.trainer import TrainerConfig


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_pair_set(tmp_path_factory.mktemp("pairs") / "dataset")


def test_padding_further_leaves_the_text_features_unchanged(pair_set: tuple) -> None:
    tokenizer = load_tokenizer(pair_set[2])
    texts = ["Rein droit de taille normale.", "Kyste cortical du rein gauche, lésion anéchogène."]
    config = TextEncoderConfig(name="tiny", pooling="max", max_length=64)
    encoder = create_text_encoder(config, tokenizer).eval()
    assert text_buckets(64) == [16, 32, 64] and text_buckets(128) == [16, 32, 64, 128]
    features = {}
    for padding in ("longest", "buckets", "max_length"):
        tokens = PairCollate(tokenizer, 64, padding)([(torch.zeros(1, 4, 4), t, -1) for t in texts])
        features[padding] = encoder(tokens["input_ids"], tokens["attention_mask"])
        longest = int(tokens["attention_mask"].sum(1).max())
        bucket = min(b for b in (16, 32, 64) if b >= longest)
        expected = {"longest": longest, "buckets": bucket, "max_length": 64}[padding]
        assert tokens["input_ids"].shape[1] == expected
    assert torch.allclose(features["buckets"], features["longest"], atol=1e-5)
    assert torch.allclose(features["max_length"], features["longest"], atol=1e-5)
    with pytest.raises(ValueError, match="unknown text padding"):
        pad_tokens({"input_ids": torch.ones(1, 3), "attention_mask": torch.ones(1, 3)}, "bucket", 8, 0)


def test_channels_last_gives_the_same_features_and_saves_a_plain_layout() -> None:
    torch.manual_seed(0)
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny")).eval()
    images = torch.rand(3, 1, 32, 32)
    before = encoder(images)
    use_channels_last(encoder)
    first = encoder.backbone.embedder.embedder.convolution.weight
    assert first.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(encoder(images), before, atol=1e-5)
    standard_layout(encoder)
    assert all(p.is_contiguous() for p in encoder.parameters())
    assert torch.allclose(encoder(images), before, atol=1e-5)


def test_grouped_pretraining_learns_with_every_speed_switch_on(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, log_every_n_steps=1,
                            logger="tensorboard", async_checkpoint=True, checkpoint_every_minutes=1e-4,
                            cudnn_benchmark=True)
    config = tiny_config(epochs=10, batch_size=16, contrastive_group=8, channels_last=True,
                         fused_optimizer=True, text_padding="buckets", trainer=trainer,
                         augment=AugmentConfig(backend="batched"))
    summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path, config)
    losses = pd.read_csv(tmp_path / "loss.csv")["loss"]
    assert losses.tail(5).mean() < losses.head(5).mean() - 0.2
    assert pd.read_csv(tmp_path / "epoch_loss.csv")["chance"].iloc[0] == pytest.approx(math.log(8))
    assert summary["steps"] == 10 * len(pairs) // 16
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    encoder = load_image_encoder(tmp_path / "image_encoder")
    assert all(p.is_contiguous() for p in encoder.parameters())


def test_csv_logs_learning_rate_samples_per_second_loss_over_chance_and_heldout_recall(pair_set: tuple,
                                                                       tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    pretrain(dataset, pairs, tokenizer_dir, tmp_path, tiny_config(epochs=1, heldout_fraction=0.25))
    metrics = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert {"lr-Adam", "train/samples_per_s", "train/loss_over_chance"} <= set(metrics.columns)
    # held-out retrieval, computed once at the end, lands beside the curves and in the summary
    retrieval = json.loads((tmp_path / "diagnostics.json").read_text())["heldout_retrieval"]
    assert metrics["heldout/r_at_1"].dropna().tolist() == pytest.approx([retrieval["r@1"]])
    assert metrics["train/samples_per_s"].dropna().gt(0).all()
    ratio = (metrics["train/loss_over_chance"] * np.log(8)).dropna()
    assert np.allclose(ratio, metrics["train/loss"].dropna(), rtol=1e-5)


def test_contrastive_groups_need_two_pairs(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    with pytest.raises(InputError, match="at least 2"):
        pretrain(dataset, pairs, tokenizer_dir, tmp_path, tiny_config(contrastive_group=1))


def test_mlflow_logger_writes_to_a_local_file_store(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    logger = build_logger("mlflow", tmp_path / "run")
    logger.log_metrics({"train/loss": 1.5}, step=0)
    logger.finalize("success")
    (series,) = (tmp_path / "run" / "mlruns").rglob("metrics/train/loss")
    assert series.read_text().split()[1] == "1.5"
