"""The training preprocessing, replayed at predict time from data/preprocess.py with the bundle's sizes.

Training reads dataset frames that ingest has already cleaned (`clean_frame`), and `preprocess_ultrasound`
cleans them again before resizing. A DICOM frame at predict time takes both steps, so the model sees the
pixels training saw; a PNG (a dataset frame, or a user's export) takes the second only, as in training.
The module constants of data/preprocess.py (sector and overlay thresholds) are recorded in the bundle:
a package whose constants differ would preprocess differently, and loading the bundle says so.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from usconvirt.data import preprocess
from usconvirt.data.preprocess import clean_frame, resize_for_model

log = logging.getLogger(__name__)

NORMALISATION = ("uint8 / 255 -> [0, 1], one channel; the encoder repeats it to RGB and applies the "
                 "ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225)")


def preprocessing_constants() -> dict[str, float]:
    """The numeric module constants of data/preprocess.py (sector crop and overlay blanking)."""
    return {name: value for name, value in vars(preprocess).items()
            if name.isupper() and isinstance(value, int | float) and not isinstance(value, bool)}


def preprocessing_parameters(classifier_size: int, organ_size: int | None) -> dict[str, Any]:
    return {"classifier_size": classifier_size, "organ_size": organ_size,
            "steps": ["to_grayscale", "sector crop (sector_mask)", "overlay blanking (overlay_mask)",
                      "resize keeping aspect", "pad to square",
                      "organ crops (is_crop): to_grayscale and resize to square only"],
            "dicom": "clean_frame as at ingest, then preprocess_ultrasound as in training",
            "png": "preprocess_ultrasound as in training",
            "normalisation": NORMALISATION, "constants": preprocessing_constants()}


def changed_constants(saved: dict[str, Any]) -> list[str]:
    """Names of the preprocessing constants that differ between the bundle and this package."""
    current = preprocessing_constants()
    recorded = saved.get("constants", {})
    return sorted(name for name in set(current) | set(recorded) if current.get(name) != recorded.get(name))


def prepare(frame: np.ndarray, sizes: tuple[int, ...], *, dicom: bool) -> dict[int, np.ndarray]:
    """The model inputs (uint8, size x size) of one raw frame, for each size."""
    crop = clean_frame(frame)[0] if dicom else frame
    crop = clean_frame(crop)[0]  # preprocess_ultrasound = clean_frame + resize_for_model, once for all sizes
    return {size: resize_for_model(crop, size) for size in sizes}
