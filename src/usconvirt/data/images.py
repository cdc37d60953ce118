"""Reading frames from disk: PNG/JPG through Pillow, DICOM through pydicom (see dicom.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from usconvirt.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom", "")


def read_frame(path: str | Path) -> np.ndarray:
    """Pixels of one image file (first frame of a DICOM), as uint8 (H, W) or (H, W, 3)."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        from usconvirt.data.dicom import read_dicom_frames

        return read_dicom_frames(path)[0]
    try:
        with Image.open(path) as img:
            img = img.convert("L") if img.mode in ("L", "I;16", "I", "F", "P", "LA") else img.convert("RGB")
            return np.asarray(img)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read image: {err}", file=path) from err
