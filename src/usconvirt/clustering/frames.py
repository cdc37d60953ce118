"""The clustering stage's frames: the shared frame cache, and how many of them are organ crops.

Organ crops (tissue up to the border, no scanner background) are kept whole by the shared preprocessing
(data/preprocess.py, `is_crop`), in every stage alike, so clustering reads the same cache as the others
and only counts them, for the log and metrics.json.
"""

from __future__ import annotations

import logging

import numpy as np

from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames, organ_crop_flags

log = logging.getLogger(__name__)


def load_cluster_frames(dataset: Dataset, size: int, image_ids: list[str],
                        workers: int = 1) -> tuple[np.ndarray, int]:
    """(N, size, size) uint8 frames of `image_ids`, and how many of them are organ crops."""
    frames = np.asarray(load_frames(dataset, size, image_ids=image_ids, workers=workers)[0])
    crops = int(organ_crop_flags(dataset, size, image_ids).sum())
    if crops:
        log.info("clustering: %d of %d frames have no scanner background (organ crops): resized only, "
                 "not sector-cropped", crops, len(frames))
    return frames, crops
