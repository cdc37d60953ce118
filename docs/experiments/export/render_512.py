"""Probe: kidney frames rendered at 512 px (every width in pixels doubled) and downsized by the bench as the
real frames are; with jpeg, the Samsung-like family exported at quality 75 at 512 px, as the Stone frames.
Runs at commit 7000a7f (render.FAMILY_OUTPUT, Acquisition.px_scale).

    python docs/experiments/export/render_512.py nojpeg|jpeg --windows 4 --seed 0
"""
import dataclasses
import sys

sys.path.insert(0, "bench")
import realism as R  # noqa: E402
from usconvirt.synth import render  # noqa: E402

quality = 75 if sys.argv.pop(1) == "jpeg" else 0
render.FAMILY_OUTPUT = ({"grey_map": (), "jpeg_quality": 0}, {"grey_map": (), "jpeg_quality": quality})
acquisition_256 = render.acquisition
synthetic_frames_256 = R.synthetic_frames


def acquisition_at_size(exam_id, size, rng, scanners="single"):
    """The 256 px settings with every width in pixels scaled to `size`."""
    a = acquisition_256(exam_id, 256, rng, scanners)
    f = size / 256
    return dataclasses.replace(
        a, psf_axial_px=a.psf_axial_px * f, psf_lateral_px=a.psf_lateral_px * f,
        smoothing_px=a.smoothing_px * f, heterogeneity_px=a.heterogeneity_px * f,
        display_blur_px=a.display_blur_px * f, px_scale=f)


def frames_at_512(count, seed, scanners="families", families=None):
    size, R.SIZE = R.SIZE, 512
    try:
        return synthetic_frames_256(count, seed, scanners, families)
    finally:
        R.SIZE = size


render.acquisition = acquisition_at_size
R.synthetic_frames = frames_at_512
sys.argv[0] = "bench/realism.py"
R.main()
