"""Contrastive groups under DDP: formed per rank by default, or cut from the gathered batch."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning as L
import pytest
import torch
from pretrain_fixtures import make_pair_set, tiny_config

from usconvirt.data.augment import AugmentConfig
from usconvirt.data.frames import load_frames
from usconvirt.losses.grouped_infonce import grouped_convirt_loss
from usconvirt.models.convirt import create_convirt, load_tokenizer
from usconvirt.training.pretrain import ConVIRTModule, PairDataset, pair_loader

WORLD, PER_RANK = 2, 3


class FirstStep(L.Callback):
    """Each rank saves its batch; rank 0 its loss and its (all-reduced) gradients."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.grads = directory, {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.save(batch, self.directory / f"batch{trainer.global_rank}.pt")

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.grads = {n: p.grad.clone() for n, p in module.model.named_parameters() if p.grad is not None}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank == 0:
            torch.save({"loss": outputs["loss"].detach(), "grads": self.grads}, self.directory / "step.pt")


# The gathered case (group_across_ranks) gathers as ConVIRT's full-batch loss does (test_pretrain_ddp.py)
# and groups the gathered rows as one process would (tests/losses); measured once, it matched too.
@pytest.mark.parametrize(("group", "across"), [(3, False)])
def test_groups_per_rank_match_one_process(tmp_path: Path, group: int, across: bool) -> None:
    dataset, pairs, tokenizer_dir = make_pair_set(tmp_path / "dataset", n=WORLD * PER_RANK)
    pairs["texts"] = [texts[:1] for texts in pairs["texts"]]
    config = tiny_config(batch_size=PER_RANK, max_steps=1, augment=AugmentConfig(enabled=False),
                         contrastive_group=group, group_across_ranks=across)
    tokenizer = load_tokenizer(tokenizer_dir)
    frames, _ = load_frames(dataset, config.image_size, image_ids=pairs["image_id"].tolist())
    data = PairDataset(frames, list(pairs["texts"]), sample_sentence=False)
    torch.manual_seed(0)
    module = ConVIRTModule(create_convirt(config.model_config(), tokenizer), config)
    reference = copy.deepcopy(module.model)
    trainer = L.Trainer(accelerator="cpu", devices=WORLD, strategy="ddp_spawn", max_steps=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[FirstStep(tmp_path)])
    trainer.fit(module, train_dataloaders=pair_loader(data, tokenizer, config, shuffle=False))
    distributed = torch.load(tmp_path / "step.pt", weights_only=False)

    batches = [torch.load(tmp_path / f"batch{r}.pt", weights_only=False) for r in range(WORLD)]
    reference.train()
    image_emb = [reference.image_features(b["images"]) for b in batches]
    text_emb = [reference.text_features(b["input_ids"], b["attention_mask"]) for b in batches]
    if across:  # one group of 4 spans both ranks' rows, the other holds the last 2
        loss = grouped_convirt_loss(torch.cat(image_emb), torch.cat(text_emb), group, config.tau, config.lam)
        rank0 = loss
    else:  # each rank's 3 rows are its own group; DDP averages the ranks' gradients
        losses = [grouped_convirt_loss(i, t, group, config.tau, config.lam)
                  for i, t in zip(image_emb, text_emb, strict=True)]
        loss, rank0 = torch.stack(losses).mean(), losses[0]
    loss.backward()
    assert distributed["loss"].item() == pytest.approx(rank0.item(), rel=1e-5)
    grads = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}
    flat = torch.cat([g.flatten() for g in grads.values()])
    flat_distributed = torch.cat([distributed["grads"][n].flatten() for n in grads])
    assert (flat_distributed - flat).norm() < 1e-4 * flat.norm()
