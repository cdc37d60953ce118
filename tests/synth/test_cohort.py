"""Cohort ground truth, frame plans and reports, without rendering (fast, many exams)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from report_parser import kidney_findings

from usconvirt.synth.config import KIDNEY_FINDINGS, Prevalences, SynthConfig
from usconvirt.synth.corpus import plan_cohort
from usconvirt.synth.exam import Lesion, sample_kidney
from usconvirt.synth.protocol import sections


@pytest.fixture(scope="module")
def cohort():
    return plan_cohort(SynthConfig(exams=1500, seed=11))


def test_every_report_states_each_kidney_finding_of_its_truth():
    exams = plan_cohort(SynthConfig(exams=700, seed=5, prevalences=Prevalences(kidney_abnormal=0.8)))
    for exam in exams:
        truth = {(side, k.finding) for side, k in exam.state.kidneys.items() if k.abnormal}
        assert kidney_findings(exam.report) == truth, exam.report


def test_kidney_abnormal_share_matches_prevalence(cohort):
    share = np.mean([e.state.kidney_abnormal for e in cohort])
    assert abs(share - 0.30) < 0.04


def test_kidney_finding_mix_matches_configured_weights(cohort):
    weights = Prevalences().kidney_findings
    counts = Counter(k.finding for e in cohort for k in e.state.kidneys.values() if k.abnormal)
    total = sum(counts.values())
    for finding in KIDNEY_FINDINGS:
        expected = weights[finding] / sum(weights.values())
        assert abs(counts[finding] / total - expected) < 0.06, finding


def test_other_organ_prevalences(cohort):
    prev = Prevalences()
    assert abs(np.mean([e.state.liver == "steatosis" for e in cohort]) - prev.liver_steatosis) < 0.04
    assert abs(np.mean([e.state.spleen == "splenomegaly" for e in cohort]) - prev.splenomegaly) < 0.03


def test_frames_per_exam_and_labels(cohort):
    counts = [len(e.frames) for e in cohort]
    assert min(counts) >= 8 and max(counts) <= 16
    for exam in cohort[:300]:
        organs = Counter(f.organ for f in exam.frames)
        assert organs["liver"] >= 1 and organs["kidney"] >= 1
        for frame in exam.frames:
            label = frame.label(exam.state)
            if frame.organ == "kidney":
                assert label == ("abnormal" if exam.state.kidneys[frame.side].abnormal else "normal")
            else:
                assert label == "absent" and (frame.side == "") == (frame.view != "renal_fossa")


def test_nephrectomy_shows_an_empty_fossa_labelled_absent(cohort):
    for exam in cohort:
        for side, kidney in exam.state.kidneys.items():
            frames = [f for f in exam.frames if f.side == side]
            if kidney.finding == "absent":
                assert [(f.organ, f.view) for f in frames] == [("other", "renal_fossa")]
                assert frames[0].label(exam.state) == "absent"


def test_some_abnormal_kidney_frames_do_not_show_the_finding(cohort):
    frames = [
        (f, e) for e in cohort for f in e.frames if f.organ == "kidney" and f.label(e.state) == "abnormal"
    ]
    visible = [f.finding_visible(e.state) for f, e in frames]
    assert 0.5 < np.mean(visible) < 0.95  # label noise, but most abnormal frames show the finding


def test_every_focal_finding_shows_on_at_least_one_frame(cohort):
    for exam in cohort:
        for side, kidney in exam.state.kidneys.items():
            if kidney.lesions:
                assert any(f.sections for f in exam.frames if f.organ == "kidney" and f.side == side)


def test_visibility_rule_cuts_through_the_lesion():
    kidney = sample_kidney(np.random.default_rng(0), "right", "normal")
    kidney.lesions = [Lesion("cyst", u=1.0, v=1.0, w=0.5, radius=1.0)]
    assert sections(kidney, "long", 0.5)[0].radius == pytest.approx(1.0)
    assert sections(kidney, "long", 1.3)  # 0.8 cm off-centre: section radius 0.6 >= 0.5
    assert not sections(kidney, "long", 1.5)
    assert sections(kidney, "transverse", 1.2) and not sections(kidney, "transverse", -1.0)


def test_reports_vary_in_style_and_mention_unimaged_organs(cohort):
    reports = [e.report for e in cohort]
    assert any("REINS :" in r for r in reports) and any("\n- " in r for r in reports)
    assert any(" RD " in r or " RD," in r for r in reports) and any("CPC" in r for r in reports)
    assert any("Echographie" in r or "Etude" in r for r in reports)  # accents dropped sometimes
    assert len({r.split("\n")[0] for r in reports}) > 20
    unimaged = [e for e in cohort if "bladder" not in {f.organ for f in e.frames} and "essie" in e.report]
    assert unimaged
