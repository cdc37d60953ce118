"""`usconvirt.load_bundle(path)`: the bundle's models, preprocessing and decision rule, ready to predict."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from usconvirt.bundle import layout
from usconvirt.bundle.classifier_io import load_bundle_classifier
from usconvirt.bundle.heatmaps import ClassActivationMaps, prompt_embeddings, similarity_maps
from usconvirt.bundle.organ import OrganMap, load_organ_model
from usconvirt.bundle.preprocessing import changed_constants, prepare
from usconvirt.errors import InputError
from usconvirt.evaluation.exam_level import ExamRule
from usconvirt.io import read_json, reading
from usconvirt.models.classifier import KidneyClassifier
from usconvirt.models.convirt import ConVIRT, load_convirt
from usconvirt.models.inference import frames_on_device, low_precision
from usconvirt.models.memory_format import use_channels_last

log = logging.getLogger(__name__)


@dataclass
class Bundle:
    """A loaded bundle. `predict` scores raw frames; `usconvirt.bundle.predict` scores whole exports."""

    root: Path
    manifest: dict[str, Any]
    classifier: KidneyClassifier
    image_size: int
    organ_model: OrganMap | None
    rule: ExamRule
    kidney_organ: str = "kidney"
    text_model: ConVIRT | None = None  # export --with-text: the pre-trained joint encoder
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _cam: ClassActivationMaps | None = field(default=None, init=False, repr=False)

    def input_sizes(self, *, organs: bool = True) -> tuple[int, ...]:
        """The input sizes the models need: the classifier's, then the organ model's (unless `organs` is
        False: the organ comes from elsewhere) and the text model's, if different."""
        sizes = [self.image_size]
        for model in (self.organ_model if organs else None, self.text_model):
            if model is not None and model.image_size not in sizes:
                sizes.append(model.image_size)
        return tuple(sizes)

    def to(self, device: str | torch.device) -> Bundle:
        self.device = torch.device(device)
        self.classifier.to(self.device)
        if self.text_model is not None:
            self.text_model.to(self.device)
        if self.device.type == "cuda":  # NHWC: tensor cores' layout, same scores
            use_channels_last(self.classifier.encoder)
            encoder = getattr(self.organ_model, "encoder", None)
            if isinstance(encoder, torch.nn.Module):
                use_channels_last(encoder)
        return self

    def class_activation_maps(self, pixels: np.ndarray) -> np.ndarray:
        """Grad-CAM of P(abnormal) for preprocessed uint8 frames (N, S, S) -> (N, S, S) float32."""
        if self._cam is None:
            self._cam = ClassActivationMaps(self.classifier, self.image_size)
        return self._cam(pixels)

    def prompt_maps(self, pixels: np.ndarray, prompts: torch.Tensor | list[str],
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed frames at the text model's size and prompts (texts or `embed_prompts`'s output)
        -> similarity maps (P, N, S, S) and zero-shot scores (P, N), cosines in [-1, 1]."""
        model = self._require_text()
        embeddings = prompts if isinstance(prompts, torch.Tensor) else self.embed_prompts(prompts)
        return similarity_maps(model, pixels, embeddings)

    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        return prompt_embeddings(self._require_text(), prompts)

    def similarity_map(self, frames: Sequence[np.ndarray], prompt: str, *, dicom: bool = False) -> np.ndarray:
        """Raw frames (any size, as `predict` takes them) -> (N, S, S) cosines of positions with `prompt`."""
        model = self._require_text()
        prepared = [prepare(frame, (model.image_size,), dicom=dicom)[model.image_size] for frame in frames]
        if not prepared:
            return np.zeros((0, model.image_size, model.image_size), np.float32)
        return self.prompt_maps(np.stack(prepared), [prompt])[0][0]

    def _require_text(self) -> ConVIRT:
        if self.text_model is None:
            raise InputError("the bundle holds no text model: export it with --with-text", file=self.root)
        return self.text_model

    @torch.inference_mode()
    def score(self, pixels: dict[int, np.ndarray], *, organs: bool = True) -> dict[str, Any]:
        """Preprocessed uint8 frames (N, S, S) per size -> p_abnormal, and organ with its confidence unless
        `organs` is False (the organ model then runs on no frame)."""
        with low_precision(self.device):
            x = frames_on_device(pixels[self.image_size], self.device)
            p_abnormal = self.classifier(x).float().softmax(1)[:, 1]
        out: dict[str, Any] = {"p_abnormal": p_abnormal.cpu().numpy()}
        if organs and self.organ_model is not None:
            probs = self.organ_model.probabilities(pixels[self.organ_model.image_size], self.device)
            out["organ"], out["organ_confidence"] = self.organ_model.organs(probs)
        return out

    def predict(self, frames: Sequence[np.ndarray], *, dicom: bool = False) -> pd.DataFrame:
        """organ, organ_confidence and p_abnormal for raw frames (uint8 gray or RGB, any size).

        `dicom=True` for frames straight from DICOM pixel data (cleaned as ingest does); False for frames
        of a dataset directory or PNG export, which training read as they are.
        """
        sizes = self.input_sizes()
        prepared = [prepare(frame, sizes, dicom=dicom) for frame in frames]
        if not prepared:
            return pd.DataFrame(columns=["organ", "organ_confidence", "p_abnormal"])
        scores = self.score({s: np.stack([p[s] for p in prepared]) for s in sizes})
        table = pd.DataFrame({"p_abnormal": scores["p_abnormal"]})
        if "organ" in scores:
            table.insert(0, "organ", scores["organ"])
            table.insert(1, "organ_confidence", scores["organ_confidence"])
        return table


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> Bundle:
    """Load a bundle written by `usconvirt export`; another major version or a missing file is refused."""
    root = Path(path)
    manifest = layout.read_manifest(root)
    classifier, image_size = load_bundle_classifier(root / layout.CLASSIFIER_DIR)
    organ = load_organ_model(root / layout.ORGAN_DIR) if (root / layout.ORGAN_DIR).is_dir() else None
    preprocessing = read_json(root / layout.PREPROCESSING, "bundle file")
    changed = changed_constants(preprocessing)
    if changed:
        log.warning("%s: this package preprocesses differently from the one that trained the bundle "
                    "(%s changed); predictions may shift", root, ", ".join(changed))
    with reading(root / layout.DECISION, "bundle file"):
        decision = read_json(root / layout.DECISION, "bundle file")
        exam = decision["exam"]
        rule = ExamRule(**{**exam, "threshold": float(exam["threshold"])})  # an edited one is refused here
        kidney = decision.get("kidney_organ", "kidney")
    text = load_convirt(root / layout.TEXT_DIR) if (root / layout.TEXT_DIR).is_dir() else None
    return Bundle(root, manifest, classifier, image_size, organ, rule, kidney, text).to(device)
