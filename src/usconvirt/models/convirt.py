"""The ConVIRT model (Dadoun et al., ISBI 2023, section 4.1): image and text encoders, each followed by
a linear projection to d.

A pre-training directory holds image_encoder/, text_encoder/, tokenizer/, projections.pt and config.yaml;
`load_convirt` turns it back into a model for retrieval and zero-shot evaluation.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer

from usconvirt.config import from_dict, load_yaml, save_yaml, to_dict
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir, atomic_path, reading
from usconvirt.models.config import ConVIRTConfig
from usconvirt.models.image_encoder import (
    ImageEncoder,
    create_image_encoder,
    load_image_encoder,
    save_image_encoder,
)
from usconvirt.models.text_encoder import (
    TextEncoder,
    create_text_encoder,
    load_text_encoder,
    save_text_encoder,
)


class ConVIRT(nn.Module):
    """Images (B, 1, S, S) in [0, 1] and tokenised texts -> d-dimensional embeddings in one space."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, tokenizer,
                 config: ConVIRTConfig) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.config = config
        self.image_size = config.image_size
        self.image_projection = nn.Linear(image_encoder.out_dim, config.proj_dim)
        self.text_projection = nn.Linear(text_encoder.out_dim, config.proj_dim)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Projected, not normalised: the loss normalises, so it sees the same vectors as a bare loop."""
        return self.image_projection(self.image_encoder(images))

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_projection(self.text_encoder(input_ids, attention_mask))

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Pad to the longest text of the batch, truncated at the encoder's max_length."""
        return dict(self.tokenizer(list(texts), padding=True, truncation=True,
                                   max_length=self.config.text.max_length, return_tensors="pt"))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S) in [0, 1] -> (B, d) L2-normalised."""
        return F.normalize(self.image_features(images), dim=-1)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (B, d) L2-normalised."""
        device = self.text_projection.weight.device
        tokens = {k: v.to(device) for k, v in self.tokenize(texts).items()}
        return F.normalize(self.text_features(tokens["input_ids"], tokens["attention_mask"]), dim=-1)


def create_convirt(config: ConVIRTConfig, tokenizer) -> ConVIRT:
    """A ConVIRT model whose text encoder fits `tokenizer` (a retrained one or the encoder's own)."""
    return ConVIRT(create_image_encoder(config.image), create_text_encoder(config.text, tokenizer),
                   tokenizer, config)


def load_tokenizer(source: str | Path):
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot load tokenizer: {str(err).splitlines()[0]}", file=source) from err


def save_convirt(model: ConVIRT, directory: str | Path, extra_config: dict | None = None) -> Path:
    """Write encoders, tokenizer, projections and config.yaml (`model` + `extra_config`), each atomically."""
    directory = Path(directory)
    for name, save in (("image_encoder", lambda d: save_image_encoder(model.image_encoder, d)),
                       ("text_encoder", lambda d: save_text_encoder(model.text_encoder, d)),
                       ("tokenizer", model.tokenizer.save_pretrained)):
        with atomic_dir(directory / name, overwrite=True) as tmp:
            save(tmp)
    # through a file object: torch.save names the archive's inner folder after a path (here the random temp
    # name), which would make two identical runs write different bytes
    with atomic_path(directory / "projections.pt") as tmp, tmp.open("wb") as file:
        torch.save({"image": model.image_projection.state_dict(), "text": model.text_projection.state_dict()},
                   file)
    save_yaml({"model": to_dict(model.config), **(extra_config or {})}, directory / "config.yaml")
    return directory


def load_convirt(directory: str | Path) -> ConVIRT:
    """The pre-trained model saved by `save_convirt` (and `usconvirt pretrain`), in eval mode on the CPU."""
    directory = Path(directory)
    if not (directory / "projections.pt").exists():
        raise InputError("not a pre-training directory (no projections.pt; did pre-training finish?)",
                         file=directory)
    values = load_yaml(directory / "config.yaml")
    config = from_dict(ConVIRTConfig, values.get("model"), source=str(directory / "config.yaml"))
    model = ConVIRT(load_image_encoder(directory / "image_encoder"),
                    load_text_encoder(directory / "text_encoder"), load_tokenizer(directory / "tokenizer"),
                    config)
    with reading(directory / "projections.pt", "projections"):
        projections = torch.load(directory / "projections.pt", map_location="cpu", weights_only=True)
        model.image_projection.load_state_dict(projections["image"])
        model.text_projection.load_state_dict(projections["text"])
    return model.eval()
