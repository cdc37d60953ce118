"""ONNX copies of the bundle's models, checked against PyTorch on a batch before they are kept."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from usconvirt.models.classifier import KidneyClassifier


class AbnormalProbability(nn.Module):
    """The classifier with its softmax: (B, 1, S, S) in [0, 1] -> P(abnormal) (B,)."""

    def __init__(self, classifier: KidneyClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images).softmax(1)[:, 1]


def export_onnx(model: nn.Module, path: str | Path, image_size: int, output: str, *,
                frames: np.ndarray | None = None, seed: int = 0) -> float:
    """Write `model` (in eval mode) as ONNX with a dynamic batch; return max |ONNX - PyTorch| on `frames`
    ((N, S, S) uint8, e.g. validation frames), or on 8 random frames."""
    import onnxruntime

    model = model.eval()
    if frames is None:
        sample = torch.rand(8, 1, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    else:
        sample = torch.from_numpy(np.ascontiguousarray(frames)).unsqueeze(1).float() / 255.0
    with warnings.catch_warnings():
        # The TorchScript exporter: the torch.export-based one takes 5x longer on a CPU for the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (sample,), str(path), dynamo=False, input_names=["images"],
                          output_names=[output], dynamic_axes={"images": {0: "batch"}, output: {0: "batch"}})
    with torch.no_grad():
        expected = model(sample).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run([output], {"images": sample.numpy()})[0]
    return float(np.abs(got - expected).max())
