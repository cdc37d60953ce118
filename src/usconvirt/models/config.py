"""The models' architectures as data: encoder and ConVIRT configs, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.config import COUNT, NOT_NEGATIVE

# Architectures as data (open_clip's model_configs): name -> ResNetConfig kwargs.
PRESETS: dict[str, dict] = {
    "resnet50": dict(embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
                     layer_type="bottleneck"),
    "resnet18": dict(embedding_size=64, hidden_sizes=[64, 128, 256, 512], depths=[2, 2, 2, 2],
                     layer_type="basic"),
    "small": dict(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[1, 1, 1, 1],
                  layer_type="basic"),
    "tiny": dict(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
                 layer_type="basic"),
}

POOLINGS = ("cls", "mean", "max")  # text_encoder.pool


@dataclass
class ImageEncoderConfig:
    """`arch` is a preset; `weights` is None (random), 'imagenet' or a local/hub path."""

    arch: str = field(default="resnet50", metadata={"choices": tuple(PRESETS)})
    weights: str | None = None


@dataclass
class TextEncoderConfig:
    """`name`: 'camembert-base' (hub), 'tiny' (random, offline) or a local model directory."""

    name: str = "camembert-base"
    # ConVIRT's max-pooling over all output vectors
    pooling: str = field(default="max", metadata={"choices": POOLINGS})
    freeze_embeddings: bool = True  # word embeddings still train when the vocabulary was retrained
    # ConVIRT tunes only the last 6 of BERT's 12 layers
    freeze_layers: int = field(default=6, metadata={"range": NOT_NEGATIVE})
    max_length: int = field(default=128, metadata={"range": COUNT})


@dataclass
class ConVIRTConfig:
    """Architecture of the model; the image size is the one it is trained (and must be used) at."""

    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = 512
    image_size: int = 224
