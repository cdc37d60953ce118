"""The fine-tuned classifier in the bundle: the encoder in transformers' layout, the head in safetensors.

Each weight is stored once: `classifier/image_encoder/` loads alone with `transformers.AutoModel`
(a ResNetModel), and `classifier/head.safetensors` holds the linear head on its pooled features.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from usconvirt.io import read_json, reading
from usconvirt.models.classifier import CLASSES, KidneyClassifier
from usconvirt.models.image_encoder import load_image_encoder, save_image_encoder

CONFIG = "classifier.json"
HEAD = "head.safetensors"


def save_bundle_classifier(model: KidneyClassifier, directory: str | Path, image_size: int) -> Path:
    directory = Path(directory)
    save_image_encoder(model.encoder, directory / "image_encoder")
    save_file({k: v.contiguous() for k, v in model.head.state_dict().items()}, directory / HEAD)
    config = {"classes": list(CLASSES), "positive_class": CLASSES[1], "image_size": image_size,
              "input": "grayscale (B, 1, S, S) in [0, 1]; the encoder repeats it to 3 channels and "
                       "applies the ImageNet mean and std", "features": model.encoder.out_dim}
    (directory / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    return directory


def load_bundle_classifier(directory: str | Path) -> tuple[KidneyClassifier, int]:
    """The classifier in eval mode and its input size."""
    directory = Path(directory)
    with reading(directory / CONFIG, "bundle file"):
        config = read_json(directory / CONFIG, "bundle file")
        classes, image_size = len(config["classes"]), int(config["image_size"])
    model = KidneyClassifier(load_image_encoder(directory / "image_encoder"), classes)
    with reading(directory / HEAD, "classifier head"):
        model.head.load_state_dict(load_file(directory / HEAD))
    return model.eval(), image_size
