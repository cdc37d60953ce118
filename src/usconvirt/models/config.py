"""The models' architectures as data: encoder and ConVIRT configs, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImageEncoderConfig:
    """`arch` is a preset; `weights` is None (random), 'imagenet' or a local/hub path."""

    arch: str = "resnet50"
    weights: str | None = None


@dataclass
class TextEncoderConfig:
    """`name`: 'camembert-base' (hub), 'tiny' (random, offline) or a local model directory."""

    name: str = "camembert-base"
    pooling: str = "max"  # ConVIRT's max-pooling over all output vectors
    freeze_embeddings: bool = True  # word embeddings still train when the vocabulary was retrained
    freeze_layers: int = 6  # ConVIRT tunes only the last 6 of BERT's 12 layers
    max_length: int = 128


@dataclass
class ConVIRTConfig:
    """Architecture of the model; the image size is the one it is trained (and must be used) at."""

    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = 512
    image_size: int = 224
