"""Batched inference over uint8 frames with one device rule: the model's own device.

Every place that encodes or scores stacks of frames (probes, retrieval, fine-tuning predictions,
clustering, the model bundle) goes through `map_frames`, so the scaling to [0, 1], the channel axis
and the device placement are written once.
"""

from __future__ import annotations

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


def frame_batches(frames: np.ndarray, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """(B, 1, S, S) float batches in [0, 1] of uint8 frames (N, S, S), in order."""
    for start in range(0, len(frames), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(frames[start:start + batch_size])).to(device)
        yield batch.unsqueeze(1).float().div_(255.0)


@torch.no_grad()
def map_frames(fn: Callable[[torch.Tensor], torch.Tensor], frames: np.ndarray, *, batch_size: int = 64,
               device: torch.device | None = None, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
    """`fn` applied to every batch of `frames`, outputs concatenated as float32 numpy (N, ...)."""
    device = device or module_device(fn)
    chunks = [fn(batch).float().cpu().numpy() for batch in frame_batches(frames, batch_size, device)]
    return np.concatenate(chunks) if chunks else np.zeros(empty_shape, np.float32)
