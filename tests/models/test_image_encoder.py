"""The image encoder factory: presets, save/load round trip, and train mode after loading."""

from __future__ import annotations

import pytest
import torch

from usconvirt.errors import InputError
from usconvirt.models.image_encoder import (
    ImageEncoderConfig,
    create_image_encoder,
    load_image_encoder,
    save_image_encoder,
)


def test_tiny_preset_maps_grayscale_batches_to_pooled_features():
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny"))
    assert encoder(torch.rand(3, 1, 48, 48)).shape == (3, encoder.out_dim)


def test_loaded_encoder_is_in_train_mode_and_gives_the_same_features(tmp_path):
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny")).eval()
    x = torch.rand(2, 1, 32, 32)
    expected = encoder(x)
    loaded = load_image_encoder(save_image_encoder(encoder, tmp_path / "enc"))
    # transformers' from_pretrained returns eval mode; fine-tuning must update batch-norm statistics.
    assert all(m.training for m in loaded.modules())
    assert torch.allclose(loaded.eval()(x), expected, atol=1e-6)


def test_unknown_arch_and_missing_weights_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="unknown image encoder arch"):
        create_image_encoder(ImageEncoderConfig(arch="resnet7"))
    with pytest.raises(InputError, match="not an image encoder directory"):
        load_image_encoder(tmp_path)
