"""Probe: kidney frames rendered at 512 px (every width in pixels doubled) and downsized by the bench as the
real frames are; with jpeg, the Samsung-like family exported at quality 75 at 512 px, as the Stone frames.

    python docs/experiments/export/render_512.py nojpeg|jpeg --windows 4 --seed 0
"""
import sys, json, runpy, dataclasses
import numpy as np
sys.path.insert(0, "bench")
from usconvirt.synth import render
jpeg = sys.argv.pop(1) == "jpeg"
render.FAMILY_OUTPUT = ({"grey_map": (), "jpeg_quality": 0}, {"grey_map": (), "jpeg_quality": 75 if jpeg else 0})
orig = render.acquisition
def acq512(exam_id, size, rng, scanners="single"):
    a = orig(exam_id, 256, rng, scanners)
    f = size / 256
    return dataclasses.replace(a, psf_axial_px=a.psf_axial_px * f, psf_lateral_px=a.psf_lateral_px * f,
        smoothing_px=a.smoothing_px * f, heterogeneity_px=a.heterogeneity_px * f,
        display_blur_px=a.display_blur_px * f, px_scale=f)
render.acquisition = acq512
import realism as R
orig_sf = R.synthetic_frames
def sf(count, seed, scanners="families", families=None):
    old = R.SIZE; R.SIZE = 512
    try:
        return orig_sf(count, seed, scanners, families)
    finally:
        R.SIZE = old
R.synthetic_frames = sf
sys.argv[0] = "bench/realism.py"
R.main()
