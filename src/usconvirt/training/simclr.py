"""The image-only control: SimCLR-style two-view InfoNCE on the pre-training frames, no text.

Same image encoder, projection size, augmentations, optimizer, batch size, epochs and held-out exams
as ConVIRT pre-training (`PretrainConfig`; its text settings are ignored), so ConVIRT minus this
control is what the reports add beyond self-supervision on the same ultrasound frames (the alternative
ConVIRT's introduction discusses). `RUN/pretrain_simclr/` holds `image_encoder/`, `config.yaml`,
`loss.csv`, `epoch_loss.csv` and `diagnostics.json` (chance = ln(2B - 1), NT-Xent's uniform value;
no retrieval, there is no text head).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from torch import nn

from usconvirt.config import save_yaml, to_dict
from usconvirt.data.augment import augment_batch
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir
from usconvirt.losses.nt_xent import nt_xent_loss
from usconvirt.models.image_encoder import ImageEncoder, create_image_encoder, save_image_encoder
from usconvirt.training.diagnostics import loss_summary, record_diagnostics, split_heldout_exams
from usconvirt.training.pretrain import ContrastiveModule, PretrainConfig, trainer_config
from usconvirt.training.trainer import build_trainer, fit

log = logging.getLogger(__name__)


class ImageOnlyModel(nn.Module):
    """The image half of ConVIRT: encoder + linear projection to proj_dim."""

    def __init__(self, image_encoder: ImageEncoder, proj_dim: int) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.image_projection = nn.Linear(image_encoder.out_dim, proj_dim)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_projection(self.image_encoder(images))


class SimCLRModule(ContrastiveModule):
    """Two independently augmented views of each frame; NT-Xent over the (gathered) 2B views."""

    def on_after_batch_transfer(self, batch: torch.Tensor | list, dataloader_idx: int) -> dict:
        images = (batch[0] if isinstance(batch, (list, tuple)) else batch).float().div_(255.0)
        if not self.training:
            return {"view_a": images, "view_b": images}
        return {"view_a": augment_batch(self.augment, images), "view_b": augment_batch(self.augment, images)}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        view_a = self.gather(self.model.image_features(batch["view_a"]))
        view_b = self.gather(self.model.image_features(batch["view_b"]))
        loss = nt_xent_loss(view_a, view_b, self.config.tau)
        self.record_loss(loss, len(batch["view_a"]))
        return loss


def frame_loader(frames, config: PretrainConfig, *per_frame: torch.Tensor) -> torch.utils.data.DataLoader:
    """uint8 frames (N, 1, S, S) and any `per_frame` tensors beside them (labels), shuffled, full batches
    only (as pair_loader)."""
    data = torch.utils.data.TensorDataset(torch.from_numpy(frames).unsqueeze(1), *per_frame)
    return torch.utils.data.DataLoader(data, batch_size=config.batch_size, shuffle=True,
                                       drop_last=len(data) > config.batch_size, num_workers=0)


def control_training_pairs(pairs: pd.DataFrame, config: PretrainConfig) -> pd.DataFrame:
    """The pairs an image-only control trains on: ConVIRT's own training frames (its held-out exams left
    out), with the run seeded as ConVIRT's."""
    if pairs.empty:
        raise InputError("no frames to pre-train on", field="pairs")
    L.seed_everything(config.seed, workers=True, verbose=False)
    return split_heldout_exams(pairs, config.heldout_fraction, config.seed)[0]


def pretrain_simclr(
    dataset: Dataset,
    pairs: pd.DataFrame,
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    resume: bool = True,
) -> dict[str, Any]:
    """Image-only pre-training on the frames of `pairs` (texts unused); saves `out_dir/image_encoder`."""
    config = config or PretrainConfig()
    out_dir = Path(out_dir)
    train_pairs = control_training_pairs(pairs, config)
    frames, _ = load_frames(dataset, config.image_size, image_ids=train_pairs["image_id"].tolist(),
                            workers=max(1, config.num_workers))
    module = SimCLRModule(ImageOnlyModel(create_image_encoder(config.image), config.proj_dim), config)
    trainer = build_trainer(trainer_config(config), out_dir, enable_validation=False)
    fit(trainer, module, out_dir, resume=resume, train_dataloaders=frame_loader(frames, config))
    losses = module.loss_table()
    views = 2 * min(len(frames), config.batch_size) * trainer.world_size
    chance = math.log(views - 1)
    summary = {"pairs": len(frames), "steps": int(trainer.global_step), **loss_summary(losses, chance),
               "out_dir": str(out_dir)}
    if trainer.is_global_zero:
        encoder = module.model.image_encoder.cpu()
        with atomic_dir(out_dir / "image_encoder", overwrite=True) as tmp:
            save_image_encoder(encoder, tmp)
        save_yaml({"model": {"image": to_dict(config.image), "image_size": config.image_size,
                             "proj_dim": config.proj_dim},
                   "pretrain": {**to_dict(config), "objective": "simclr"}}, out_dir / "config.yaml")
        summary.update(record_diagnostics(out_dir, losses, chance))
    log.info("image-only (SimCLR) pre-training done: %s", summary)
    return summary
