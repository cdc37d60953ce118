"""Channels-last (NHWC) convolutions: the layout tensor cores read, same values as the default layout.

Every stage that runs a CNN on a GPU (pre-training with `channels_last`, fine-tuning, predict) converts its
image encoder here; `standard_layout` converts back before weights are saved, so files stay plain.
"""

from __future__ import annotations

import torch
from torch import nn

_HOOK = "_channels_last_hook"


def _first_convolution(module: nn.Module) -> nn.Conv2d:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def use_channels_last(encoder: nn.Module) -> nn.Module:
    """NHWC weights, and NHWC input to the first convolution (the layers after it keep the layout)."""
    if getattr(encoder, _HOOK, None) is None:
        hook = _first_convolution(encoder).register_forward_pre_hook(
            lambda _, args: (args[0].contiguous(memory_format=torch.channels_last), *args[1:]))
        setattr(encoder, _HOOK, hook)
    return encoder.to(memory_format=torch.channels_last)


def standard_layout(model: nn.Module) -> nn.Module:
    """Undo `use_channels_last` anywhere in `model`, so saved weights are plain contiguous tensors."""
    for module in model.modules():
        hook = getattr(module, _HOOK, None)
        if hook is not None:
            hook.remove()
            setattr(module, _HOOK, None)
    for parameter in model.parameters():
        parameter.data = parameter.data.contiguous()
    return model
