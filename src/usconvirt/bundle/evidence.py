"""What `predict` writes beside each frame's scores: heat maps, prompt maps and zero-shot scores, thumbnails.

OUT/maps/gradcam/ID.{png,npy}: Grad-CAM of P(abnormal) for every kidney frame; OUT/maps/prompt-K/ID.{png,npy}:
the similarity map of the K-th prompt (1-based, in the order given); OUT/review/frames/ID.png: every frame,
preprocessed, for the review page. File names are the frames' pseudonymous image ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from usconvirt.bundle.load import Bundle
from usconvirt.bundle.overlays import write_frame, write_map

MAPS_DIR = "maps"
GRADCAM = "gradcam"
REVIEW_DIR = "review"
THUMBNAILS = f"{REVIEW_DIR}/frames"


def prompt_dir(k: int) -> str:
    return f"prompt-{k}"


def score_column(k: int) -> str:
    return f"zero_shot_{k}"


@dataclass
class EvidenceWriter:
    """Computes and writes the maps of each scored batch; `rows` returns the frames.csv fields it adds."""

    bundle: Bundle
    root: Path  # OUT (its temporary directory while predict runs)
    maps: bool = True
    prompts: tuple[str, ...] = ()
    thumbnails: bool = False
    _prompt_embeddings: torch.Tensor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.maps:
            (self.root / MAPS_DIR / GRADCAM).mkdir(parents=True, exist_ok=True)
        if self.prompts:
            self._prompt_embeddings = self.bundle.embed_prompts(list(self.prompts))
            for k in range(1, len(self.prompts) + 1):
                (self.root / MAPS_DIR / prompt_dir(k)).mkdir(parents=True, exist_ok=True)
        if self.thumbnails:
            (self.root / THUMBNAILS).mkdir(parents=True, exist_ok=True)

    @property
    def columns(self) -> list[str]:
        return (["gradcam"] if self.maps else []) + [score_column(k) for k in range(1, len(self.prompts) + 1)]

    def rows(self, image_ids: list[str], pixels: dict[int, np.ndarray], kidney: np.ndarray,
             ) -> list[dict[str, Any]]:
        """Maps of the kidney frames of a batch, thumbnails of all; one dict of added fields per frame."""
        extra: list[dict[str, Any]] = [{c: "" for c in self.columns} for _ in image_ids]
        frames = pixels[self.bundle.image_size]
        if self.thumbnails:
            for image_id, frame in zip(image_ids, frames, strict=True):
                write_frame(self.root / THUMBNAILS, image_id, frame)
        chosen = np.flatnonzero(kidney)
        if len(chosen) == 0:
            return extra
        if self.maps:
            heat = self.bundle.class_activation_maps(frames[chosen])
            for i, h in zip(chosen, heat, strict=True):
                name = write_map(self.root / MAPS_DIR / GRADCAM, image_ids[i], frames[i], h, low=0.0)
                extra[i]["gradcam"] = f"{MAPS_DIR}/{GRADCAM}/{name}"
        if self.prompts:
            text_frames = pixels[self.bundle.text_model.image_size][chosen]
            maps, scores = self.bundle.prompt_maps(text_frames, self._prompt_embeddings)
            for k in range(len(self.prompts)):
                for j, i in enumerate(chosen):
                    write_map(self.root / MAPS_DIR / prompt_dir(k + 1), image_ids[i], text_frames[j],
                              maps[k, j])
                    extra[i][score_column(k + 1)] = round(float(scores[k, j]), 6)
        return extra
