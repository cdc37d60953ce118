"""Frozen-feature probes recompute batch-norm statistics on the training frames for every init."""

from __future__ import annotations

import numpy as np
import torch

from usconvirt.evaluation.representation import recompute_batch_norm
from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder


def test_batch_norm_statistics_become_the_frames_own() -> None:
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny"))
    stem = next(m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert torch.all(stem.running_var == 1.0)  # untrained: init values, not the frames'
    frames = np.random.default_rng(0).integers(0, 80, size=(20, 32, 32), dtype=np.uint8)
    recompute_batch_norm(encoder, frames, batch_size=5)  # equal batches: mean of means = mean
    assert not encoder.training and stem.momentum == 0.1
    # the stem's statistics now equal those of its inputs over all 20 frames (one pass, exact average)
    captured = []
    hook = stem.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    with torch.no_grad():
        encoder(torch.from_numpy(frames).unsqueeze(1).float() / 255.0)
    hook.remove()
    assert torch.allclose(stem.running_mean, captured[0].mean((0, 2, 3)), atol=1e-4)

