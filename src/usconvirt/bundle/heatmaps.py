"""Where the models look: Grad-CAM maps of the classifier and prompt similarity maps of the joint encoder.

Grad-CAM (Selvaraju et al. 2017) comes from Captum's `LayerGradCam`, the PyTorch project's own
attribution library: maintained with torch, it hooks any layer of an `nn.Module` and computes a batch in
one forward and one backward, so our transformers ResNet needs no wrapper. The layer is the deepest
ResNet stage whose feature map is at least MIN_CAM_SIDE positions wide: the last stage at 224 px
(7 x 7, the paper's choice), one stage earlier at the demo's 64 px, where the last stage is 2 x 2 and
a map would show only a quadrant. Maps are ReLU'd (evidence for "abnormal") and upsampled bilinearly to
the frame's size; their unit is the layer's, so overlays scale each map to its own maximum.

A prompt map (BioViL's patch-text similarity) uses the ConVIRT image encoder's last feature map:
average pooling commutes with the linear image projection, so projecting each position gives vectors
whose mean is the frame's embedding; the map is the cosine of each position's vector with the projected
prompt, and the zero-shot score the cosine of the pooled embedding with it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam
from torch import nn

from usconvirt.models.classifier import KidneyClassifier
from usconvirt.models.convirt import ConVIRT
from usconvirt.models.image_encoder import ImageEncoder

MIN_CAM_SIDE = 7  # feature-map positions across: Grad-CAM's 7 x 7 on a 224 px ResNet
ABNORMAL = 1  # the classifier's output explained


def to_input(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """Preprocessed uint8 frames (N, S, S) -> the models' (N, 1, S, S) float input in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).to(device).unsqueeze(1).float().div_(255.0)


def cam_layer(encoder: ImageEncoder, image_size: int) -> nn.Module:
    """The deepest ResNet stage whose output is at least MIN_CAM_SIDE positions wide at `image_size`."""
    stages = encoder.backbone.encoder.stages
    device = next(encoder.parameters()).device
    with torch.no_grad():
        probe = torch.zeros(1, 3, image_size, image_size, device=device)
        hidden = encoder.backbone(pixel_values=probe, output_hidden_states=True).hidden_states[1:]
    wide = [i for i, h in enumerate(hidden) if h.shape[-1] >= MIN_CAM_SIDE]
    return stages[wide[-1] if wide else 0]


class ClassActivationMaps:
    """Grad-CAM of P(abnormal) for batches of preprocessed frames, on the classifier's device."""

    def __init__(self, classifier: KidneyClassifier, image_size: int) -> None:
        self.classifier, self.image_size = classifier, image_size
        self.layer = cam_layer(classifier.encoder, image_size)
        self.gradcam = LayerGradCam(classifier, self.layer)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 (N, S, S) -> float32 (N, S, S), >= 0, finite."""
        if len(pixels) == 0:
            return np.zeros((0, self.image_size, self.image_size), np.float32)
        self.classifier.eval()
        device = next(self.classifier.parameters()).device
        maps = self.gradcam.attribute(to_input(pixels, device), target=ABNORMAL, relu_attributions=True)
        maps = LayerAttribution.interpolate(maps.detach(), (self.image_size, self.image_size), "bilinear")
        return maps[:, 0].float().cpu().numpy()


def last_feature_map(encoder: ImageEncoder, images: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w): the backbone's output before pooling, read by a hook so the encoder's own input
    handling (channels, normalisation) is the one used."""
    captured: list[torch.Tensor] = []
    handle = encoder.backbone.register_forward_hook(
        lambda module, args, output: captured.append(output.last_hidden_state))
    try:
        encoder(images)
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def prompt_embeddings(model: ConVIRT, prompts: list[str]) -> torch.Tensor:
    """(P, d) L2-normalised projected prompts."""
    return model.encode_texts(list(prompts))


@torch.no_grad()
def similarity_maps(model: ConVIRT, pixels: np.ndarray, prompts: torch.Tensor,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, S, S) frames and (P, d) prompt embeddings -> maps (P, N, S, S) and zero-shot scores (P, N).

    Each position of the last feature map is projected with the image projection: their mean is the
    frame's (unnormalised) embedding, as pooling and the projection are both linear.
    """
    size = pixels.shape[-1]
    features = last_feature_map(model.image_encoder, to_input(pixels, model.image_projection.weight.device))
    positions = model.image_projection(features.permute(0, 2, 3, 1))  # (N, h, w, d)
    pooled = F.normalize(positions.mean((1, 2)), dim=-1)
    cosine = torch.einsum("nhwd,pd->pnhw", F.normalize(positions, dim=-1), prompts)
    maps = F.interpolate(cosine, (size, size), mode="bilinear", align_corners=False)
    return maps.float().cpu().numpy(), (prompts @ pooled.T).float().cpu().numpy()
