"""Image encoder factory: transformers' ResNetModel from a preset name, a hub id or a local path.

Every stage (clustering, pre-training, fine-tuning) builds its CNN here, so weights move between them.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from transformers import ResNetConfig, ResNetModel

from usconvirt.errors import InputError
from usconvirt.io import read_json, reading
from usconvirt.models.config import PRESETS, ImageEncoderConfig

IMAGENET_WEIGHTS = "microsoft/resnet-50"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

class ImageEncoder(nn.Module):
    """Grayscale (B, 1, S, S) in [0, 1] -> pooled features (B, out_dim)."""

    def __init__(self, backbone: ResNetModel, config: ImageEncoderConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.out_dim = int(backbone.config.hidden_sizes[-1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        pixels = (images - self.mean) / self.std
        return self.backbone(pixel_values=pixels).pooler_output.flatten(1)


def create_image_encoder(config: ImageEncoderConfig | None = None) -> ImageEncoder:
    """Build the encoder; 'imagenet' loads microsoft/resnet-50 (cache or network), a path loads that model."""
    config = config or ImageEncoderConfig()
    if config.weights is None:
        if config.arch not in PRESETS:
            raise InputError(f"unknown image encoder arch '{config.arch}', expected one of {sorted(PRESETS)}")
        backbone = ResNetModel(ResNetConfig(num_channels=3, **PRESETS[config.arch]))
    else:
        source = IMAGENET_WEIGHTS if config.weights == "imagenet" else config.weights
        try:
            backbone = ResNetModel.from_pretrained(source)
        except OSError as err:
            raise InputError(f"cannot load image encoder weights '{source}' (offline and not cached?): "
                             f"{str(err).splitlines()[0]}") from err
    # from_pretrained returns eval mode; a trainer must see the same train mode as a fresh model, or
    # batch norm would keep frozen statistics while fine-tuning.
    return ImageEncoder(backbone, config).train()


def save_image_encoder(encoder: ImageEncoder, directory: str | Path) -> Path:
    """Save as a transformers model directory that `load_image_encoder` (and ResNetModel) reads."""
    directory = Path(directory)
    encoder.backbone.save_pretrained(directory)
    (directory / "usconvirt_encoder.json").write_text(json.dumps(asdict(encoder.config)))
    return directory


def load_image_encoder(directory: str | Path) -> ImageEncoder:
    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise InputError("not an image encoder directory (no config.json)", file=directory)
    meta = read_json(directory / "usconvirt_encoder.json", "image encoder file") if (
        directory / "usconvirt_encoder.json").exists() else {}
    config = ImageEncoderConfig(arch=meta.get("arch", "resnet50"), weights=str(directory))
    with reading(directory, "image encoder (config.json, model.safetensors)"):
        backbone = ResNetModel.from_pretrained(directory)
    return ImageEncoder(backbone, config).train()


def image_encoder_from(name_or_path: str, arch: str = "resnet50") -> ImageEncoder:
    """The encoder an initialisation names: random (an `arch` preset), imagenet, convirt:RUN/pretrain, or
    an image encoder directory (a pre-training or fine-tuning output, or save_image_encoder's)."""
    if name_or_path == "random":
        return create_image_encoder(ImageEncoderConfig(arch=arch))
    if name_or_path == "imagenet":
        return create_image_encoder(ImageEncoderConfig(arch="resnet50", weights="imagenet"))
    return load_image_encoder(init_directory(name_or_path))


def init_directory(name_or_path: str) -> Path:
    """The directory an initialisation other than random and imagenet names: convirt:RUN/pretrain, or an
    image encoder directory."""
    path = Path(name_or_path.removeprefix("convirt:"))
    if (path / "image_encoder").is_dir():
        path = path / "image_encoder"
    if not path.is_dir():
        raise InputError("expected random, imagenet, convirt:RUN/pretrain or an image encoder directory",
                         file=path, field="init")
    return path
