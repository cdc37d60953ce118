"""ConVIRT pre-training on a tiny synthetic pair set: learning, resume after a kill, the CLI."""

from __future__ import annotations

import json
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
from usconvirt.errors import InputError
from usconvirt.models.convirt import load_convirt
from usconvirt.models.image_encoder import load_image_encoder
from usconvirt.training.diagnostics import loss_diagnostics, split_heldout_exams
from usconvirt.training.pretrain import (
    PretrainConfig,
    cosine_with_warmup,
    pretrain,
    shuffled_texts,
)
from usconvirt.training.simclr import pretrain_simclr
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
    epochs = pd.read_csv(tmp_path / "epoch_loss.csv")
    assert list(epochs.columns) == ["epoch", "mean_loss", "chance"] and len(epochs) == 8
    assert epochs["chance"].iloc[0] == pytest.approx(np.log(8))
    diagnostics = json.loads((tmp_path / "diagnostics.json").read_text())
    assert diagnostics["last_epoch_mean_loss"] == pytest.approx(epochs["mean_loss"].iloc[-1])
    assert diagnostics["ratio"] == pytest.approx(diagnostics["last_epoch_mean_loss"] / np.log(8))
    assert diagnostics["heldout_retrieval"] is None  # 16 exams x 5%: too few to hold any out


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


def _losses(values_per_epoch: list[list[float]]) -> pd.DataFrame:
    rows = [(i, e, v) for e, values in enumerate(values_per_epoch) for i, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["step", "epoch", "loss"])


def test_the_warning_reads_the_last_epoch_mean_against_chance(caplog) -> None:
    chance = float(np.log(32))
    near = loss_diagnostics(_losses([[3.5, 3.5], [0.95 * chance, 0.91 * chance]]), chance)
    assert near["warning"] and "learned little" in caplog.text
    learned = loss_diagnostics(_losses([[3.5], [0.8 * chance, 0.85 * chance]]), chance)
    assert not learned["warning"] and learned["ratio"] == pytest.approx(0.825)


def test_shuffled_texts_give_every_exam_another_exams_sentences() -> None:
    exams = ["a", "a", "b", "c", "c", "d"]
    texts = [["A"], ["A"], ["B"], ["C"], ["C"], ["D"]]
    shuffled = shuffled_texts(exams, texts, seed=0)
    assert all(new != old for new, old in zip(shuffled, texts, strict=True))
    assert shuffled[0] == shuffled[1] and shuffled[3] == shuffled[4]  # an exam's frames still agree
    assert sorted(t[0] for t in dict(zip(exams, shuffled, strict=True)).values()) == ["A", "B", "C", "D"]


def test_heldout_exams_are_whole_and_disjoint_from_training() -> None:
    pairs = pd.DataFrame({"image_id": [f"f{i}" for i in range(40)],
                          "exam_id": [f"e{i // 2}" for i in range(40)], "texts": [["t"]] * 40})
    train, held = split_heldout_exams(pairs, 0.2, seed=0)
    assert held["exam_id"].nunique() == 4 and len(held) == 8
    assert not set(train["exam_id"]) & set(held["exam_id"])
    assert split_heldout_exams(pairs, 0.2, seed=0)[1].equals(held)  # the controls hold out the same exams


def test_pretraining_reports_heldout_retrieval_and_controls_run(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set
    config = tiny_config(epochs=1, heldout_fraction=0.25)
    summary = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "convirt", config)
    assert summary["heldout_pairs"] == 8 and summary["pairs"] == 24
    retrieval = json.loads((tmp_path / "convirt" / "diagnostics.json").read_text())["heldout_retrieval"]
    assert retrieval["n"] == 8 and 0.0 <= retrieval["r@1"] <= retrieval["r@5"] <= retrieval["r@10"] == 1.0
    shuffled = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "shuffled",
                        tiny_config(epochs=1, heldout_fraction=0.25, shuffle_texts=True))
    assert shuffled["steps"] == summary["steps"]
    simclr = pretrain_simclr(dataset, pairs, tmp_path / "simclr", config)
    assert simclr["steps"] == summary["steps"]  # the same step budget on the same frames
    assert simclr["chance_loss"] == pytest.approx(np.log(15))
    encoder = load_image_encoder(tmp_path / "simclr" / "image_encoder")
    assert encoder(torch.rand(2, 1, 32, 32)).shape == (2, encoder.out_dim)
    assert (tmp_path / "simclr" / "epoch_loss.csv").exists()


def test_an_experiment_that_was_not_adopted_is_refused_by_name() -> None:
    from usconvirt.config import from_dict

    for key in PretrainConfig.retired:
        with pytest.raises(InputError, match=f"pretrain.{key}: '{key}' was an experiment"):
            from_dict(PretrainConfig, {key: True}, source="pretrain")


def test_equivalent_texts_are_counted_and_shared_as_positives(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, tokenizer_dir = pair_set  # four texts for 32 frames: most negatives are equivalent
    plain = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "plain", tiny_config(sample_sentence=False))
    shared = pretrain(dataset, pairs, tokenizer_dir, tmp_path / "shared",
                      tiny_config(sample_sentence=False, equivalent_texts="identical"))
    for summary in (plain, shared):
        assert summary["negatives"] == summary["steps"] * 8 * 7
        assert 0.05 < summary["equivalent_negative_share"] < 0.6  # 4 texts for 32 frames: about 1 in 4
    assert plain["equivalent_negatives"] == shared["equivalent_negatives"]  # same seed, same batches
    # byte-identical texts embed identically, and then shared soft targets give ConVIRT's loss (see
    # tests/losses/test_equivalent_texts.py): the curves may match here; they must stay finite
    assert np.isfinite(pd.read_csv(tmp_path / "shared" / "loss.csv")["loss"]).all()
    diagnostics = json.loads((tmp_path / "shared" / "diagnostics.json").read_text())
    assert diagnostics["equivalent_negatives"] == shared["equivalent_negatives"]
    with pytest.raises(InputError, match="equivalent_texts"):
        pretrain(dataset, pairs, tokenizer_dir, tmp_path / "f", tiny_config(equivalent_texts="findings"))


def test_cli_pretrain_simclr_writes_an_image_only_encoder(pair_set: tuple, tmp_path: Path) -> None:
    dataset, pairs, _ = pair_set
    pairs.to_parquet(tmp_path / "pairs.parquet")
    save_yaml({"pretrain": to_dict(tiny_config())}, tmp_path / "config.yaml")
    out = tmp_path / "pretrain_simclr"
    result = CliRunner().invoke(app, ["pretrain", "--simclr", "--pairs", str(tmp_path / "pairs.parquet"),
                                      "--dataset", str(dataset.root), "--out", str(out),
                                      "--config", str(tmp_path / "config.yaml"),
                                      "--max-steps", "2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "simclr 2 steps" in result.output and "convirt 2 steps" not in result.output
    assert (out / "image_encoder" / "config.json").exists() and not (out / "text_encoder").exists()


def test_convirt_equiv_init_pretrains_beside_convirt_with_shared_positives(pair_set: tuple, tmp_path: Path,
                                                                           ) -> None:
    from usconvirt.pipeline_config import PipelineConfig
    from usconvirt.run_layout import RunLayout
    from usconvirt.stages import finetune_runs, run_pretrain

    dataset, pairs, tokenizer_dir = pair_set
    pairs.to_parquet(tmp_path / "pairs.parquet")
    # the sentence stage's table: every text a finding of one side
    texts, sentences = sorted({s for texts in pairs["texts"] for s in texts}), tmp_path / "sentences.parquet"
    pd.DataFrame({"exam_id": "e0", "text": texts, "organ": "kidney", "laterality": "right",
                  "abnormal": [i % 2 == 0 for i in range(len(texts))]}).to_parquet(sentences)
    layout = RunLayout(tmp_path / "run", dataset=dataset.root, pairs=tmp_path / "pairs.parquet",
                       tokenizer=tokenizer_dir, sentences=sentences)
    config = PipelineConfig(pretrain=tiny_config(max_steps=2, sample_sentence=False),
                            finetune_inits=("random", "convirt-equiv"))
    line = run_pretrain(config, layout)
    assert line.startswith("convirt 2 steps") and "; convirt-equiv 2 steps" in line
    assert "% of in-batch negatives were equivalent texts" in line
    equiv = layout.pretraining("convirt-equiv")
    assert equiv.name == "pretrain_equiv" and (equiv / "image_encoder").is_dir()
    # byte-identical texts as positives are ConVIRT's own loss: the variant groups by findings instead
    assert "equivalent_texts: findings" in (equiv / "config.yaml").read_text()
    assert "equivalent_texts: none" in (layout.pretrain / "config.yaml").read_text()
    assert finetune_runs(config, layout)["convirt-equiv"] == str(equiv)


@pytest.mark.parametrize("rank", [0, 1])
def test_cli_pretrain_prints_its_summary_on_rank_zero_only(tmp_path: Path, monkeypatch, cli, rank) -> None:
    from lightning.pytorch.utilities import rank_zero_only

    from usconvirt import stages

    monkeypatch.setattr(stages, "run_pretrain", lambda *args, **kwargs: "convirt 3 steps on 49 pairs")
    monkeypatch.setattr(rank_zero_only, "rank", rank)  # as torchrun's second process has it
    code, out = cli("pretrain", "--pairs", tmp_path / "p.parquet", "--dataset", tmp_path,
                    "--out", tmp_path / "pt")
    assert code == 0 and ("convirt 3 steps" in out) == (rank == 0), out
