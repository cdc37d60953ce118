"""ConVIRT pre-training with Lightning: pair data, batched GPU augmentations, gathered-negative InfoNCE.

Runs the same on one CPU, one GPU, torchrun or SLURM (strategy='ddp'): the loss of every rank sees the
embeddings of all ranks, gathered with gradients, so a step equals one step on the global batch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from usconvirt.config import to_dict
from usconvirt.data.augment import AugmentConfig, augment_batch, build_augment
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.io import write_table
from usconvirt.losses.infonce import convirt_loss
from usconvirt.models.convirt import ConVIRT, ConVIRTConfig, create_convirt, load_tokenizer, save_convirt
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.training.trainer import TrainerConfig, build_trainer, fit

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    """ConVIRT's published settings (PAPER.md Part 2); `epochs`/`max_steps` override the trainer's."""

    image: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="resnet50",
                                                                                  weights="imagenet"))
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = 512
    tau: float = 0.1
    lam: float = 0.75
    batch_size: int = 32  # per device; the loss's negatives come from all devices
    lr: float = 1e-4
    weight_decay: float = 1e-6
    optimizer: str = "adam"  # adam | adamw
    schedule: str = "cosine"  # cosine (after linear warm-up) | constant
    warmup_steps: int = 0
    epochs: int = 10
    max_steps: int = -1
    image_size: int = 224
    sample_sentence: bool = True  # one sentence per step, uniformly; else all sentences joined
    num_workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0

    def model_config(self) -> ConVIRTConfig:
        return ConVIRTConfig(image=self.image, text=self.text, proj_dim=self.proj_dim,
                             image_size=self.image_size)


class PairDataset(torch.utils.data.Dataset):
    """(uint8 frame (1, S, S), one text) per pair; the sentence is drawn anew at every visit."""

    def __init__(self, frames: np.ndarray, texts: list[list[str]], sample_sentence: bool = True) -> None:
        if len(frames) != len(texts):
            raise ValueError(f"{len(frames)} frames but {len(texts)} text lists")
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.texts = texts
        self.sample_sentence = sample_sentence

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        texts = self.texts[i]
        # torch's RNG: seeded per worker by Lightning's seed_everything(workers=True)
        text = texts[int(torch.randint(len(texts), ()))] if self.sample_sentence else " ".join(texts)
        return self.frames[i].unsqueeze(0), text


class PairCollate:
    """Stack frames (still uint8, 4x less to copy to the device) and tokenise the texts in the worker."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, items: list[tuple[torch.Tensor, str]]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer([text for _, text in items], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="pt")
        return {"images": torch.stack([frame for frame, _ in items]),
                "input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


def pair_loader(dataset: PairDataset, tokenizer, config: PretrainConfig, *, shuffle: bool = True,
                ) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=shuffle, drop_last=len(dataset) > config.batch_size,
        num_workers=config.num_workers, persistent_workers=config.num_workers > 0,
        collate_fn=PairCollate(tokenizer, config.text.max_length), pin_memory=torch.cuda.is_available())


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ConVIRTModule(L.LightningModule):
    """The training step of PAPER.md section 4; the loss curve travels in checkpoints, for loss.csv."""

    def __init__(self, model: ConVIRT, config: PretrainConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.augment = build_augment(config.augment, config.image_size)
        self.loss_history: list[tuple[int, int, float]] = []
        self._pending: list[tuple[int, int, torch.Tensor]] = []

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 -> [0, 1] floats, and ConVIRT's augmentations batched on the training device."""
        images = batch["images"].float().div_(255.0)
        if self.training:
            images = augment_batch(self.augment, images)
        return {**batch, "images": images}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        image_emb = self.model.image_features(batch["images"])
        text_emb = self.model.text_features(batch["input_ids"], batch["attention_mask"])
        if self.trainer.world_size > 1:  # negatives from every rank, gradients flowing back to each
            image_emb = self.all_gather(image_emb, sync_grads=True).flatten(0, 1)
            text_emb = self.all_gather(text_emb, sync_grads=True).flatten(0, 1)
        loss = convirt_loss(image_emb, text_emb, self.config.tau, self.config.lam)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["images"]))
        self._pending.append((self.global_step, self.current_epoch, loss.detach()))
        return loss

    def on_train_epoch_end(self) -> None:
        self._flush_losses()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._flush_losses()
        checkpoint["loss_history"] = self.loss_history

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss_history = list(checkpoint.get("loss_history", []))

    def _flush_losses(self) -> None:
        """Move recorded losses off the device in one go rather than syncing at every step."""
        if self._pending:
            values = torch.stack([loss for _, _, loss in self._pending]).float().cpu().tolist()
            self.loss_history += [(s, e, v) for (s, e, _), v in zip(self._pending, values, strict=True)]
            self._pending = []

    def loss_table(self) -> pd.DataFrame:
        """Mean loss per optimizer step (accumulated batches share a step)."""
        self._flush_losses()
        table = pd.DataFrame(self.loss_history, columns=["step", "epoch", "loss"])
        return table.groupby(["step", "epoch"], as_index=False)["loss"].mean()

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if self.config.optimizer not in optimizers:
            raise InputError(f"unknown optimizer '{self.config.optimizer}', expected adam or adamw",
                             field="optimizer")
        optimizer = optimizers[self.config.optimizer](params, lr=self.config.lr,
                                                      weight_decay=self.config.weight_decay)
        if self.config.schedule == "constant":
            return optimizer
        if self.config.schedule != "cosine":
            raise InputError(f"unknown schedule '{self.config.schedule}', expected cosine or constant",
                             field="schedule")
        total = int(self.trainer.estimated_stepping_batches)
        warmup = self.config.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def trainer_config(config: PretrainConfig) -> TrainerConfig:
    """The trainer settings with this stage's epochs, steps and seed."""
    return dataclasses.replace(config.trainer, max_epochs=config.epochs, max_steps=config.max_steps,
                               seed=config.seed)


def pretrain(
    dataset: Dataset,
    pairs: pd.DataFrame,
    tokenizer_dir: str | Path | None,
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    resume: bool = True,
    callbacks: list[L.Callback] | None = None,
) -> dict[str, Any]:
    """Pre-train on `pairs` (image_id, texts) and save the model under `out_dir`; returns a summary."""
    config = config or PretrainConfig()
    out_dir = Path(out_dir)
    if pairs.empty:
        raise InputError("no image-text pairs to pre-train on", field="pairs")
    if tokenizer_dir is None and config.text.name == "tiny":
        raise InputError("the 'tiny' text encoder needs a retrained tokenizer", field="tokenizer")
    L.seed_everything(config.seed, workers=True, verbose=False)
    tokenizer = load_tokenizer(tokenizer_dir if tokenizer_dir is not None else config.text.name)
    frames, _ = load_frames(dataset, config.image_size, image_ids=pairs["image_id"].tolist(),
                            workers=max(1, config.num_workers))
    data = PairDataset(frames, [list(t) for t in pairs["texts"]], config.sample_sentence)
    module = ConVIRTModule(create_convirt(config.model_config(), tokenizer), config)
    trainer = build_trainer(trainer_config(config), out_dir, callbacks=callbacks, enable_validation=False)
    fit(trainer, module, out_dir, resume=resume, train_dataloaders=pair_loader(data, tokenizer, config))
    losses = module.loss_table()
    if trainer.is_global_zero:
        save_convirt(module.model.cpu(), out_dir, {"pretrain": to_dict(config)})
        write_table(losses, out_dir / "loss.csv")
    chance = math.log(min(len(data), config.batch_size) * trainer.world_size)
    summary = {"pairs": len(data), "steps": int(trainer.global_step),
               "first_loss": float(losses["loss"].iloc[0]) if len(losses) else math.nan,
               "final_loss": float(losses["loss"].iloc[-1]) if len(losses) else math.nan,
               "chance_loss": chance, "out_dir": str(out_dir)}
    log.info("pre-training done: %s", summary)
    if learned_nothing(losses["loss"].to_numpy(), chance):
        log.warning("pre-training loss stayed at chance (ln %d = %.3f): the encoders learned nothing; "
                    "train longer, check the pairs, or use mean pooling with a randomly initialised text "
                    "encoder", round(math.exp(chance)), chance)
    return summary


def learned_nothing(losses: np.ndarray, chance: float, tail: float = 0.1) -> bool:
    """Whether the mean loss of the last `tail` of the steps is still within 1% of chance, ln(batch)."""
    if len(losses) == 0:
        return False
    last = losses[-max(1, int(len(losses) * tail)):]
    return bool(last.mean() > 0.99 * chance)
