"""ConVIRT pre-training on a tiny synthetic pair set: learning, resume after a kill, the CLI."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from pretrain_fixtures import make_pair_set, tiny_config
from typer.testing import CliRunner

from usconvirt.cli import app
from usconvirt.config import save_yaml, to_dict
from usconvirt.models.convirt import load_convirt
from usconvirt.models.image_encoder import load_image_encoder
from usconvirt.training.pretrain import cosine_with_warmup, learned_nothing, pretrain
from usconvirt.training.trainer import TrainerConfig


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_pair_set(tmp_path_factory.mktemp("pairs") / "dataset")


def test_tiny_pretraining_lowers_the_loss(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path, tiny_config(epochs=8))
    losses = pd.read_csv(tmp_path / "loss.csv")
    assert list(losses.columns) == ["step", "epoch", "loss"]
    assert summary["steps"] == len(losses) == 8 * len(pairs) // 8
    quarter = len(losses) // 4
    assert losses["loss"].tail(quarter).mean() < losses["loss"].head(quarter).mean() - 0.2
    # fine-tuning reads the image encoder; evaluation reads the whole model
    encoder = load_image_encoder(tmp_path / "image_encoder")
    assert encoder(torch.rand(2, 1, 32, 32)).shape == (2, encoder.out_dim)
    assert load_convirt(tmp_path).encode_texts(["Rein droit."]).shape == (1, 16)


class KillAt(L.Callback):
    """Crash the run at a given step, after a checkpoint was written: a killed job."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("killed")


def test_resume_after_a_kill_continues_steps_and_optimizer_state(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, checkpoint_every_n_steps=2)
    config = tiny_config(epochs=2, max_steps=6, trainer=trainer, schedule="cosine", warmup_steps=2)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(dataset, pairs, tokenizer_dir, tmp_path, config, callbacks=[KillAt(5)])
    killed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert killed["global_step"] == 4
    assert not (tmp_path / "loss.csv").exists()

    summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path, config, resume=True)
    final = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    assert summary["steps"] == final["global_step"] == 6
    adam_steps = {int(s["step"]) for s in final["optimizer_states"][0]["state"].values()}
    assert adam_steps == {6}
    assert final["lr_schedulers"][0]["last_epoch"] == 6  # the schedule continued too
    assert pd.read_csv(tmp_path / "loss.csv")["step"].tolist() == list(range(6))


def test_cosine_schedule_warms_up_then_decays() -> None:
    factors = [cosine_with_warmup(s, warmup=2, total=10) for s in range(11)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    assert factors[-1] == pytest.approx(0.0)


def test_cli_pretrain_with_config_and_overrides(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    pairs.to_parquet(tmp_path / "pairs.parquet")
    save_yaml({"pretrain": to_dict(tiny_config())}, tmp_path / "config.yaml")
    out = tmp_path / "pretrain"
    result = CliRunner().invoke(app, ["pretrain", "--pairs", str(tmp_path / "pairs.parquet"),
                                      "--dataset", str(dataset.root), "--tokenizer", str(tokenizer_dir),
                                      "--config", str(tmp_path / "config.yaml"), "--out", str(out),
                                      "--max-steps", "2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "2 steps on 32 pairs" in result.output
    assert (out / "image_encoder" / "config.json").exists() and (out / "projections.pt").exists()


def test_a_loss_at_chance_is_flagged_and_a_falling_one_is_not() -> None:
    chance = float(np.log(32))
    assert learned_nothing(np.full(100, chance), chance)
    assert not learned_nothing(np.linspace(chance, 2.5, 100), chance)
    assert not learned_nothing(np.array([]), chance)
