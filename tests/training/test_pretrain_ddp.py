"""Two gloo CPU processes give the loss and gradients of one process on the same global batch, with
ConVIRT's full-batch loss and with contrastive groups formed per rank."""

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
from usconvirt.losses.infonce import convirt_loss
from usconvirt.models.convirt import create_convirt, load_tokenizer
from usconvirt.training.pretrain import ConVIRTModule, PairDataset, pair_loader

WORLD, PER_RANK = 2, 3


class RecordFirstStep(L.Callback):
    """Each rank saves its batch; rank 0 also its loss and (already all-reduced) gradients."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.grads: dict[str, torch.Tensor] = {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        torch.save(batch, self.directory / f"batch{trainer.global_rank}.pt")

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.grads = {n: p.grad.clone() for n, p in module.model.named_parameters() if p.grad is not None}

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank == 0:
            torch.save({"loss": outputs["loss"].detach(), "grads": self.grads}, self.directory / "step.pt")


def one_ddp_step(tmp_path: Path, **settings):
    """One DDP step of WORLD ranks: the config, a copy of the model before it, each rank's batch (the
    global batch is the ranks' batches in rank order), and rank 0's loss and gradients."""
    dataset, pairs, tokenizer_dir = make_pair_set(tmp_path / "dataset", n=WORLD * PER_RANK)
    pairs["texts"] = [texts[:1] for texts in pairs["texts"]]  # one sentence: no sampling noise
    config = tiny_config(batch_size=PER_RANK, max_steps=1, augment=AugmentConfig(enabled=False), **settings)
    tokenizer = load_tokenizer(tokenizer_dir)
    frames, _ = load_frames(dataset, config.image_size, image_ids=pairs["image_id"].tolist())
    data = PairDataset(frames, list(pairs["texts"]), sample_sentence=False)
    torch.manual_seed(0)
    module = ConVIRTModule(create_convirt(config.model_config(), tokenizer), config)
    reference = copy.deepcopy(module.model)
    trainer = L.Trainer(accelerator="cpu", devices=WORLD, strategy="ddp_spawn", max_steps=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[RecordFirstStep(tmp_path)])
    trainer.fit(module, train_dataloaders=pair_loader(data, tokenizer, config, shuffle=False))
    distributed = torch.load(tmp_path / "step.pt", weights_only=False)
    batches = [torch.load(tmp_path / f"batch{r}.pt", weights_only=False) for r in range(WORLD)]
    reference.train()
    return config, reference, batches, distributed


def embeddings(reference, batches) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each rank's image and text embeddings under the reference model (batch norm sees each rank's share)."""
    return ([reference.image_features(b["images"]) for b in batches],
            [reference.text_features(b["input_ids"], b["attention_mask"]) for b in batches])


def gradient_norm_gap(reference, distributed) -> tuple[torch.Tensor, torch.Tensor]:
    grads = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}
    flat = torch.cat([g.flatten() for g in grads.values()])
    return (torch.cat([distributed["grads"][n].flatten() for n in grads]) - flat).norm(), flat.norm()


def test_ddp_loss_and_gradients_equal_single_process(tmp_path: Path) -> None:
    config, reference, batches, distributed = one_ddp_step(tmp_path)
    assert all(len(b["images"]) == PER_RANK and b["images"].dtype == torch.float32 for b in batches)
    image_emb, text_emb = embeddings(reference, batches)
    loss = convirt_loss(torch.cat(image_emb), torch.cat(text_emb), config.tau, config.lam)
    loss.backward()

    assert distributed["loss"].item() == pytest.approx(loss.item(), rel=1e-5)
    grads = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}
    assert grads.keys() == distributed["grads"].keys()
    for name, grad in grads.items():
        # float32 sums in another order: equal up to rounding (some, like key biases, are ~0 up to rounding)
        torch.testing.assert_close(distributed["grads"][name], grad, rtol=1e-3, atol=1e-5, msg=name)
    gap, norm = gradient_norm_gap(reference, distributed)
    assert gap < 1e-4 * norm


# The gathered case (group_across_ranks) gathers as ConVIRT's full-batch loss does (above) and groups the
# gathered rows as one process would (tests/losses); measured once, it matched too.
def test_contrastive_groups_per_rank_match_one_process(tmp_path: Path) -> None:
    config, reference, batches, distributed = one_ddp_step(tmp_path, contrastive_group=3)
    image_emb, text_emb = embeddings(reference, batches)
    # each rank's 3 rows are its own group; DDP averages the ranks' gradients
    losses = [grouped_convirt_loss(i, t, 3, config.tau, config.lam)
              for i, t in zip(image_emb, text_emb, strict=True)]
    torch.stack(losses).mean().backward()
    assert distributed["loss"].item() == pytest.approx(losses[0].item(), rel=1e-5)
    gap, norm = gradient_norm_gap(reference, distributed)
    assert gap < 1e-4 * norm
