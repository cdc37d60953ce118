"""Training run state: SIGTERM is never success, checkpoints are bound to their config, logs append."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from pretrain_fixtures import make_pair_set, tiny_config

from usconvirt.cli import _raise_interrupted
from usconvirt.errors import InputError, Interrupted
from usconvirt.training.pretrain import pretrain
from usconvirt.training.trainer import TrainerConfig


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return make_pair_set(tmp_path_factory.mktemp("pairs") / "dataset")


class SigtermAt(L.Callback):
    """Send this process SIGTERM at a given step, as a batch scheduler does."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def _config(**overrides):
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, checkpoint_every_n_steps=2,
                            log_every_n_steps=1)
    return tiny_config(**{"epochs": 2, "max_steps": 6, "trainer": trainer, **overrides})


@pytest.mark.parametrize("cli_handler", [False, True], ids=["library", "cli"])
def test_sigterm_during_pretraining_is_an_interruption_and_the_rerun_resumes(pair_set, tmp_path, cli_handler):
    dataset, pairs, tokenizer_dir = pair_set
    previous = signal.signal(signal.SIGTERM, _raise_interrupted if cli_handler else signal.SIG_DFL)
    try:
        with pytest.raises(Interrupted) as stop:
            pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config(), callbacks=[SigtermAt(3)])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stop.value.exit_code == 143
    assert not (tmp_path / "loss.csv").exists()  # not written as if the run had finished
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] in (2, 4)

    summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config())
    assert summary["steps"] == 6
    # the CSV log keeps the killed attempt's rows before the resumed attempt's
    logged = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert logged["step"].min() == 0 and logged["step"].max() >= 5


def test_a_changed_config_starts_fresh_instead_of_resuming_or_crashing(pair_set, tmp_path, caplog):
    dataset, pairs, tokenizer_dir = pair_set
    pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config(proj_dim=16))
    with caplog.at_level("WARNING"):
        summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config(proj_dim=8))  # other shapes
    assert summary["steps"] == 6  # trained from step 0, not resumed from the finished run
    assert any("not resuming" in r.getMessage() for r in caplog.records)
    assert [p.name.startswith("checkpoints.stale-") for p in tmp_path.iterdir()].count(True) == 1
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    projection = next(v for k, v in state.items() if k.endswith("image_projection.weight"))
    assert projection.shape[0] == 8


def test_the_same_config_resumes_the_finished_checkpoint(pair_set, tmp_path: Path):
    dataset, pairs, tokenizer_dir = pair_set
    pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config())
    pretrain(dataset, pairs, tokenizer_dir, tmp_path, _config())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("checkpoints.stale-")]


def test_progress_reaches_a_log_file_as_a_line_with_step_loss_rate_and_time_left(caplog):
    from types import SimpleNamespace

    from usconvirt.training.trainer import MinuteProgress

    progress = MinuteProgress("pretrain", interval=0.0)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=100, is_global_zero=True)
    progress.on_train_start(trainer, None)
    trainer.global_step = 40
    with caplog.at_level("INFO", logger="usconvirt.training.trainer"):
        progress.on_train_batch_end(trainer, None, {"loss": torch.tensor(2.5)}, None, 0)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("pretrain: step 40/100, loss 2.5000,") and "steps/s" in line and "left" in line


class EpochCheckpointProbe(L.Callback):
    """At the start of the second epoch, the step of last.ckpt on disk (None when there is none)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir, self.first_epoch_steps, self.saved_step = out_dir, None, None

    def on_train_epoch_start(self, trainer, module) -> None:
        path = self.out_dir / "checkpoints" / "last.ckpt"
        if trainer.current_epoch == 1:
            self.first_epoch_steps = trainer.global_step
            self.saved_step = torch.load(path, weights_only=False)["global_step"] if path.exists() else None


def test_default_checkpoints_are_written_every_epoch_and_on_sigterm(pair_set, tmp_path):
    dataset, pairs, tokenizer_dir = pair_set
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, log_every_n_steps=1)
    probe = EpochCheckpointProbe(tmp_path)
    pretrain(dataset, pairs, tokenizer_dir, tmp_path, tiny_config(epochs=3, trainer=trainer),
             callbacks=[probe])
    assert probe.saved_step == probe.first_epoch_steps > 0  # not only at the end of training

    killed = tmp_path / "killed"
    with pytest.raises(Interrupted):
        pretrain(dataset, pairs, tokenizer_dir, killed, tiny_config(epochs=3, trainer=trainer),
                 callbacks=[SigtermAt(probe.first_epoch_steps + 1)])
    # the step SIGTERM stopped at, not the epoch's end before it
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == \
        probe.first_epoch_steps + 2


def test_a_missing_tokenizer_directory_is_one_line_naming_it_and_writes_nothing(pair_set, tmp_path):
    dataset, pairs, _ = pair_set
    with pytest.raises(InputError, match="no such tokenizer directory") as error:
        pretrain(dataset, pairs, tmp_path / "tokenizer", tmp_path / "out", _config())
    assert str(tmp_path / "tokenizer") in str(error.value)
    assert not (tmp_path / "out").exists()
