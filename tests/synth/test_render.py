"""Rendered frames: kidney findings stay visible at 64 px; organ views differ; the simulator's speed knobs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from usconvirt.synth.config import Prevalences
from usconvirt.synth.exam import Lesion, sample_exam, sample_kidney
from usconvirt.synth.protocol import FramePlan, sections
from usconvirt.synth.render import render_frame


def _exam(finding: str, lesions: list[Lesion] | None = None):
    rng = np.random.default_rng(1)
    exam = sample_exam(rng, Prevalences(kidney_abnormal=0.0), "exam-1", "patient-1", "2022-05-06", "A.B.", 60)
    kidney = sample_kidney(rng, "right", finding)
    if lesions is not None:
        kidney.lesions = lesions
    exam.kidneys["right"] = kidney
    return exam, kidney


def _at_64(exam, plan, seed: int = 3) -> np.ndarray:
    frame = render_frame(np.random.default_rng(seed), exam, plan, 256, overlay=False)
    return np.asarray(Image.fromarray(frame).resize((64, 64), Image.BILINEAR)).astype(float)


@pytest.mark.parametrize(
    ("finding", "lesion"),
    [
        ("cyst", Lesion("cyst", 0.0, 1.0, 0.0, 1.4)),
        ("stone", Lesion("stone", 0.5, 0.0, 0.0, 0.4)),
        ("mass", Lesion("mass", 0.0, 1.0, 0.0, 1.5)),
        ("angiomyolipoma", Lesion("angiomyolipoma", 0.0, 1.0, 0.0, 0.9)),
        ("hydronephrosis", None),
    ],
)
@pytest.mark.parametrize("seed", [3, 4])
def test_kidney_findings_stay_visible_at_64px(finding, lesion, seed):
    """Same anatomy, speckle and settings with and without the finding: a blob of pixels at 64 px changes
    by more than 40 grey levels."""
    normal_exam, _ = _exam("normal")
    sick_exam, kidney = _exam(finding, [lesion] if lesion else None)
    kidney.length_cm, kidney.width_cm = (
        normal_exam.kidneys["right"].length_cm,
        normal_exam.kidneys["right"].width_cm,
    )
    normal = _at_64(normal_exam, FramePlan("kidney", "right", "long", 0.0), seed)
    sick = _at_64(sick_exam, FramePlan("kidney", "right", "long", 0.0, sections(kidney, "long", 0.0)), seed)
    assert (np.abs(sick - normal) > 40).sum() >= 12


def test_organ_views_differ_in_darkness():
    """A full bladder (anechoic) is far darker in the middle of the frame than liver parenchyma."""
    exam, _ = _exam("normal")
    liver = _at_64(exam, FramePlan("liver", view="liver"))
    bladder = _at_64(exam, FramePlan("bladder", view="bladder"))
    centre = (slice(22, 32), slice(28, 36))
    assert bladder[centre].mean() < liver[centre].mean() - 30


def test_overlay_burns_text_outside_the_sector():
    exam, _ = _exam("normal")
    plan = FramePlan("liver", view="liver")
    bare = render_frame(np.random.default_rng(0), exam, plan, 128, overlay=False)
    with_ui = render_frame(np.random.default_rng(0), exam, plan, 128)
    corner = (slice(0, 10), slice(0, 30))
    assert bare[corner].max() == 0 and with_ui[corner].max() > 150


def test_one_simulated_scanner_per_exam_and_scanners_differ():
    """Scanner settings (speckle size, dynamic range, grey map) are the exam's; only gain and dynamic
    range move a little from frame to frame."""
    from usconvirt.synth.render import FRAME_JITTER, acquisition

    a1 = acquisition("exam-a", 256, np.random.default_rng(1))
    a2 = acquisition("exam-a", 256, np.random.default_rng(2))
    b = acquisition("exam-b", 256, np.random.default_rng(1))
    assert (a1.psf_axial_px, a1.gamma, a1.texture_shape, a1.contrast) == (
        a2.psf_axial_px, a2.gamma, a2.texture_shape, a2.contrast)
    assert abs(a1.gain_db - a2.gain_db) <= 2 * FRAME_JITTER["gain_db"]
    assert (a1.psf_axial_px, a1.gamma) != (b.psf_axial_px, b.gamma)



def test_exam_scanner_is_the_frames_scanner_and_families_are_both_drawn():
    """The probe of the encoders reads an exam's scanner back from its id: it must be the one drawn."""
    from usconvirt.synth.render import FRAME_JITTER, SCANNER_FAMILIES, acquisition, exam_scanner

    drawn = [exam_scanner(f"exam-{i}", "families") for i in range(40)]
    assert {index for index, _ in drawn} == {0, 1}
    index, settings = drawn[3]
    low, high = SCANNER_FAMILIES[index]["gain_db"]
    assert low <= settings["gain_db"] <= high
    frame = acquisition("exam-3", 64, np.random.default_rng(0), "families")
    assert abs(frame.gain_db - settings["gain_db"]) <= FRAME_JITTER["gain_db"]
    assert frame.gamma == settings["gamma"]

def test_k_distributed_speckle_has_a_heavier_bright_tail_than_rayleigh():
    from usconvirt.synth.bmode import Acquisition, Scene, make_sector, simulate

    sector = make_sector(128, depth_cm=12.0)
    def frame(shape: float) -> np.ndarray:
        acq = Acquisition(gain_db=-10, dynamic_range_db=90, gamma=1.0, texture_shape=shape)
        image = simulate(Scene.empty(sector), np.random.default_rng(0), acq)
        return image[sector.pixels // 128, sector.pixels % 128]

    rayleigh, clumpy = frame(0.0), frame(1.0)
    assert np.percentile(clumpy, 99) - np.median(clumpy) > np.percentile(rayleigh, 99) - np.median(rayleigh)


def _tissue(**settings) -> tuple[np.ndarray, np.ndarray]:
    """A homogeneous tissue frame under the given scanner settings, and its sector mask."""
    from usconvirt.synth.bmode import Acquisition, Scene, make_sector, simulate

    sector = make_sector(128, depth_cm=12.0)
    acq = Acquisition(**{"gain_db": -30, "dynamic_range_db": 60, "gamma": 1.0, **settings})
    mask = np.zeros(128 * 128, bool)
    mask[sector.pixels] = True
    return simulate(Scene.empty(sector), np.random.default_rng(0), acq), mask.reshape(128, 128)


def test_reject_level_shows_the_low_grey_levels_black():
    def black(**settings) -> float:
        image, mask = _tissue(**settings)
        return float((image[mask] < 0.02).mean())

    assert black(reject=0.2) > black() + 0.05


def test_tissue_heterogeneity_is_blotchier_than_speckle_alone():
    from scipy import ndimage

    def blotches(**settings) -> float:  # spread of 9 px local means inside the sector: speckle averages out
        image, mask = _tissue(**settings)
        inner = ndimage.binary_erosion(mask, iterations=6)
        return float(ndimage.uniform_filter(image, 9)[inner].std())

    assert blotches(heterogeneity=0.6, heterogeneity_px=4.0) > 1.5 * blotches()


def test_display_smoothing_lowers_pixel_to_pixel_differences_and_edge_enhancement_raises_them():
    def roughness(**settings) -> float:
        image, mask = _tissue(**settings)
        inner = mask[:, 1:] & mask[:, :-1]
        return float(np.abs(np.diff(image, axis=1))[inner].mean())

    assert roughness(display_blur_px=1.0) < roughness() < roughness(edge_enhance=1.5)


def test_compounding_lowers_the_speckle_contrast():
    def speckle_contrast(**settings) -> float:  # intensity sd / mean in homogeneous tissue
        image, mask = _tissue(gain_db=-10, dynamic_range_db=200, **settings)
        return float(image[mask].std() / image[mask].mean())

    assert speckle_contrast(compounding=0.5) < 0.9 * speckle_contrast()


def test_single_scanner_is_the_default_and_renders_the_frames_of_earlier_corpora():
    """`synth.scanners: single` draws no family and skips the families' processing, so every documented
    synthetic study still reproduces; `families` turns that processing on; an unknown name is refused."""
    import hashlib

    import pytest

    from usconvirt.errors import InputError
    from usconvirt.synth.config import SynthConfig
    from usconvirt.synth.corpus import RENDER_STREAM, plan_cohort
    from usconvirt.synth.render import acquisition

    assert SynthConfig().scanners == "single"
    single = acquisition("exam-a", 256, np.random.default_rng(1))
    families = acquisition("exam-a", 256, np.random.default_rng(1), "families")
    assert (single.compounding, single.reject, single.edge_enhance) == (0.0, 0.0, 0.0)
    assert families.compounding > 0
    exams = plan_cohort(SynthConfig(exams=4, seed=3))
    digest = hashlib.sha256()
    for exam in exams[:3]:
        for i, plan in enumerate(exam.frames[:4]):
            rng = np.random.default_rng([3, RENDER_STREAM, exam.index, i])
            digest.update(render_frame(rng, exam.state, plan, 96).tobytes())
    assert digest.hexdigest()[:16] == "cfffd247ec6d4470"  # the same frames as before the families existed
    with pytest.raises(InputError, match="scanners"):
        SynthConfig(scanners="tuned")
