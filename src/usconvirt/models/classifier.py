"""The fine-tuned kidney classifier: an image encoder and a linear head, normal (0) vs abnormal (1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from usconvirt.errors import InputError
from usconvirt.io import reading
from usconvirt.models.image_encoder import ImageEncoder, load_image_encoder, save_image_encoder
from usconvirt.models.inference import map_frames

CLASSES = ("normal", "abnormal")


class KidneyClassifier(nn.Module):
    """Grayscale (B, 1, S, S) in [0, 1] -> logits (B, 2); every weight is trained when fine-tuning."""

    def __init__(self, encoder: ImageEncoder, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


def predict_abnormal(model: KidneyClassifier, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """P(abnormal) of each uint8 frame (N, S, S), in order, on the model's device (eval mode)."""
    model.eval()
    return map_frames(lambda x: model(x).softmax(1)[:, 1], frames, batch_size=batch_size,
                      device=next(model.parameters()).device)


def save_classifier(model: KidneyClassifier, directory: str | Path) -> Path:
    """Write `directory/image_encoder/` (reusable by any stage) and `directory/head.pt`."""
    directory = Path(directory)
    save_image_encoder(model.encoder, directory / "image_encoder")
    torch.save(model.head.state_dict(), directory / "head.pt")
    (directory / "classifier.json").write_text(json.dumps({"classes": list(CLASSES)}))
    return directory


def load_classifier(directory: str | Path) -> KidneyClassifier:
    directory = Path(directory)
    if not (directory / "head.pt").exists():
        raise InputError("not a classifier directory (no head.pt)", file=directory)
    model = KidneyClassifier(load_image_encoder(directory / "image_encoder"))
    with reading(directory / "head.pt", "classifier head"):
        model.head.load_state_dict(torch.load(directory / "head.pt", map_location="cpu", weights_only=True))
    return model
