"""The report-label control: the image encoder trained on the reports' weak labels with GCE, no contrast.

What a CheXpert-style team runs first: every kidney frame of the pre-training pool takes its exam's (or,
when its exported side is known, its side's) normal/abnormal label read from the report
(`usconvirt.weak_labels`), frames whose label is unknown are left out, and an encoder + linear head
learns them with generalized cross-entropy, the noisy-label loss the fine-tuning stage uses. Same frames
(ConVIRT's, held-out exams kept out), augmentations, optimizer, schedule, batch size and number of
optimizer steps as ConVIRT's pre-training (`PretrainConfig`; its text settings are ignored), so ConVIRT
minus this control is what the contrastive objective adds over plain report labels.

`RUN/pretrain_report_labels/` holds `image_encoder/` (the head is discarded, as ConVIRT's projection),
`config.yaml`, `loss.csv`, `epoch_loss.csv`, `diagnostics.json` (chance: GCE at p = 1/2) and
`frames.json` (frames trained on per label, frames left out as unknown).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from usconvirt.config import save_yaml, to_dict
from usconvirt.data.augment import augment_batch
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir, write_json
from usconvirt.losses.gce import generalized_cross_entropy
from usconvirt.models.classifier import KidneyClassifier
from usconvirt.models.image_encoder import create_image_encoder, save_image_encoder
from usconvirt.training.config import PretrainConfig
from usconvirt.training.diagnostics import loss_summary, record_diagnostics
from usconvirt.training.pretrain import ContrastiveModule, trainer_config
from usconvirt.training.simclr import control_training_pairs, frame_loader
from usconvirt.training.trainer import build_trainer, fit
from usconvirt.weak_labels import LABELS, frame_labels

log = logging.getLogger(__name__)
Q = 0.7  # GCE's q: FinetuneConfig.q's default, fixed here so that the control does not move with finetune.q


class ReportLabelModule(ContrastiveModule):
    """One augmented view of each frame, GCE on its weak label (ConVIRT's optimizer and schedule)."""

    def on_after_batch_transfer(self, batch: list, dataloader_idx: int) -> dict:
        images, labels = batch
        images = images.float().div_(255.0)
        return {"images": augment_batch(self.augment, images) if self.training else images, "labels": labels}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = generalized_cross_entropy(self.model(batch["images"]), batch["labels"], Q)
        self.record_loss(loss, len(batch["images"]))
        return loss


def convirt_steps(n_frames: int, config: PretrainConfig) -> int:
    """The optimizer steps ConVIRT's pre-training takes on `n_frames` pairs (full batches, one device)."""
    per_epoch = max(1, n_frames // config.batch_size) // max(1, config.trainer.accumulate_grad_batches)
    steps = config.epochs * max(1, per_epoch)
    return steps if config.max_steps < 0 else min(steps, config.max_steps)


def labelled_frames(dataset: Dataset, pairs: pd.DataFrame, labels: pd.DataFrame,
                    ) -> tuple[list[str], np.ndarray]:
    """(image ids, class indices) of the pairs' frames whose weak label is known."""
    images = dataset.images.set_index("image_id")
    ids = pairs["image_id"].astype(str).tolist()
    codes = np.asarray(frame_labels(images, ids, labels), dtype=np.int64)
    keep = codes >= 0
    return [i for i, k in zip(ids, keep, strict=True) if k], codes[keep]


def pretrain_report_labels(
    dataset: Dataset,
    pairs: pd.DataFrame,
    labels: pd.DataFrame,
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    resume: bool = True,
) -> dict[str, Any]:
    """Train on the weak labels (a `weak_labels` table) of `pairs`' frames; saves `out_dir/image_encoder`."""
    config = config or PretrainConfig()
    out_dir = Path(out_dir)
    train_pairs = control_training_pairs(pairs, config)
    ids, targets = labelled_frames(dataset, train_pairs, labels)
    if len(np.unique(targets)) < 2:
        raise InputError(f"the weak labels give {len(targets)} frames of one class or none: nothing to learn",
                         field="weak_labels")
    frames, _ = load_frames(dataset, config.image_size, image_ids=ids, workers=max(1, config.num_workers))
    steps = convirt_steps(len(train_pairs), config)
    trainer_settings = dataclasses.replace(trainer_config(config), max_epochs=-1, max_steps=steps)
    module = ReportLabelModule(KidneyClassifier(create_image_encoder(config.image)), config)
    trainer = build_trainer(trainer_settings, out_dir, enable_validation=False)
    loader = frame_loader(frames, config, torch.from_numpy(targets))
    fit(trainer, module, out_dir, resume=resume, train_dataloaders=loader)
    losses = module.loss_table()
    chance = (1.0 - 0.5**Q) / Q  # GCE when both classes get p = 1/2
    counts = {name: int((targets == i).sum()) for i, name in enumerate(LABELS)}
    counts["unknown_left_out"] = len(train_pairs) - len(ids)
    summary = {"pairs": len(frames), "steps": int(trainer.global_step), **loss_summary(losses, chance),
               "frames": counts, "out_dir": str(out_dir)}
    if trainer.is_global_zero:
        with atomic_dir(out_dir / "image_encoder", overwrite=True) as tmp:
            save_image_encoder(module.model.encoder.cpu(), tmp)
        save_yaml({"model": {"image": to_dict(config.image), "image_size": config.image_size},
                   "pretrain": {**to_dict(config), "objective": "report_labels", "q": Q}},
                  out_dir / "config.yaml")
        write_json(counts, out_dir / "frames.json")
        summary.update(record_diagnostics(out_dir, losses, chance))
    log.info("report-label pre-training done: %s", summary)
    return summary
