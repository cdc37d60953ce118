"""The switches that make a training step cheaper on a GPU without changing what it computes.

Each is a config key (pretrain: `channels_last` (models/memory_format.py), `fused_optimizer`,
`text_padding`, `compile`; trainer: `cudnn_benchmark`); docs/pretraining.md says what each measured.
They change the layout, shapes or kernels of the step, not its values beyond float rounding: a text
padded further is masked out by the attention mask and by the pooling, which reads the real tokens only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from usconvirt.training.config import TEXT_PADDINGS

# aten ops whose result the host must read (a Python number or a data-dependent shape): on a GPU each
# waits for the device to finish the work queued before it
HOST_READ_OPS = frozenset({"_local_scalar_dense", "is_nonzero", "equal", "nonzero", "masked_select",
                           "unique_dim", "_unique2", "repeat_interleave"})
SMALLEST_BUCKET = 16


def text_buckets(max_length: int) -> list[int]:
    """Padded lengths under `buckets`: 16, 32, 64, ... below max_length, then max_length."""
    lengths, length = [], SMALLEST_BUCKET
    while length < max_length:
        lengths.append(length)
        length *= 2
    return [*lengths, max_length]


def pad_tokens(tokens, padding: str, max_length: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Token ids and attention mask padded on the right from the batch's longest to the chosen length."""
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    if padding == "longest":
        return {"input_ids": ids, "attention_mask": mask}
    if padding not in TEXT_PADDINGS:
        raise ValueError(f"unknown text padding '{padding}', expected one of {', '.join(TEXT_PADDINGS)}")
    longest = ids.shape[1]
    target = max_length if padding == "max_length" else next(b for b in text_buckets(max_length)
                                                              if b >= longest)
    extra = max(0, target - longest)
    return {"input_ids": F.pad(ids, (0, extra), value=pad_id), "attention_mask": F.pad(mask, (0, extra))}


def optimizer_options(fused: bool, device: torch.device) -> dict[str, bool]:
    """Keyword arguments for torch's Adam/AdamW: the fused kernel when asked for and on CUDA."""
    return {"fused": True} if fused and device.type == "cuda" else {}


def compile_encoders(model: nn.Module) -> nn.Module:
    """torch.compile the image and text encoders in place (parameter names unchanged)."""
    model.image_encoder.compile()
    model.text_encoder.compile()
    return model


class HostReads(TorchDispatchMode):
    """Counts the ops in HOST_READ_OPS run inside it while `counting`: a device-independent count of a
    step's synchronisations, so the CPU can check what `torch.cuda.set_sync_debug_mode` reports on a GPU.

    Turn `counting` off around code whose reads are of host tensors on a GPU too (torch's unfused Adam
    reads its step counters, kept on the CPU), or the CPU count overstates the GPU's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.count, self.counting = 0, True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.counting and func.overloadpacket.__name__ in HOST_READ_OPS:
            self.count += 1
        return func(*args, **(kwargs or {}))
