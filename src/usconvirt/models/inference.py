"""Batched inference over uint8 frames with one device rule: the model's own device.

Every place that encodes or scores stacks of frames (probes, retrieval, fine-tuning predictions,
clustering, the model bundle) goes through `map_frames`, so the scaling to [0, 1], the channel axis
and the device placement are written once. On a GPU the uint8 frames travel pinned (4x fewer bytes than
floats, copied without blocking) and the models run in bf16 under `inference_mode`; on the CPU, in
float32 as before, so CPU results do not change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch


def module_device(module: torch.nn.Module | object) -> torch.device:
    """The device of a module's first parameter (CPU for parameterless or non-torch callables)."""
    if isinstance(module, torch.nn.Module):
        first = next(module.parameters(), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def frames_on_device(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 frames (B, S, S) -> (B, 1, S, S) floats in [0, 1] on `device` (pinned, non-blocking on CUDA)."""
    batch = torch.from_numpy(np.ascontiguousarray(frames))
    if device.type == "cuda":
        batch = batch.pin_memory().to(device, non_blocking=True)
    else:
        batch = batch.to(device)
    return batch.unsqueeze(1).float().div_(255.0)


def low_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA device that has it; nothing elsewhere."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def frame_batches(frames: np.ndarray, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """(B, 1, S, S) float batches in [0, 1] of uint8 frames (N, S, S), in order."""
    for start in range(0, len(frames), batch_size):
        yield frames_on_device(frames[start:start + batch_size], device)


def map_frames(fn: Callable[[torch.Tensor], torch.Tensor], frames: np.ndarray, *, batch_size: int = 64,
               device: torch.device | None = None, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
    """`fn` applied to every batch of `frames`, outputs concatenated as float32 numpy (N, ...)."""
    device = device or module_device(fn)
    with torch.inference_mode(), low_precision(device):
        chunks = [fn(batch).float().cpu().numpy() for batch in frame_batches(frames, batch_size, device)]
    return np.concatenate(chunks) if chunks else np.zeros(empty_shape, np.float32)
