"""Probe: the Samsung-like family exported as JPEG (quality 75) at the render size itself (native), or only
resampled to 512 px and back without JPEG (resample): which part of the export changes the check.
Runs at commit 7000a7f, whose render.export_frame it replaces.

    python docs/experiments/export/export_probe.py native|resample --windows 4 --seed 0
"""
import io
import runpy
import sys

import numpy as np
from PIL import Image

from usconvirt.synth import render


def resample_only(image: np.ndarray, quality: int) -> np.ndarray:
    if not quality:
        return image
    size = image.shape[0]
    picture = Image.fromarray(image).resize((512, 512), Image.BILINEAR)
    return np.asarray(picture.resize((size, size), Image.BILINEAR))


def jpeg_native(image: np.ndarray, quality: int) -> np.ndarray:
    if not quality:
        return image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L"))


render.export_frame = {"resample": resample_only, "native": jpeg_native}[sys.argv.pop(1)]
sys.argv[0] = "bench/realism.py"
runpy.run_path("bench/realism.py", run_name="__main__")
