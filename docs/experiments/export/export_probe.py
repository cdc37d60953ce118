"""Probe: the Samsung-like family exported as JPEG (quality 75) at the render size itself (native), or only
resampled to 512 px and back without JPEG (resample): which part of the export changes the check.

    python docs/experiments/export/export_probe.py native|resample --windows 4 --seed 0
"""
import sys, io, runpy
import numpy as np
from PIL import Image
from usconvirt.synth import render
mode = sys.argv.pop(1)
orig = render.export_frame
def resample_only(image, quality):
    if not quality: return image
    s = image.shape[0]
    p = Image.fromarray(image).resize((512, 512), Image.BILINEAR).resize((s, s), Image.BILINEAR)
    return np.asarray(p)
def jpeg_native(image, quality):
    if not quality: return image
    b = io.BytesIO(); Image.fromarray(image).save(b, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("L"))
render.export_frame = {"resample": resample_only, "native": jpeg_native}[mode]
sys.argv[0] = "bench/realism.py"
runpy.run_path("bench/realism.py", run_name="__main__")
