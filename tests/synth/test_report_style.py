"""Report styles: the templated (hospital) style states the same truth in far fewer wordings."""

from __future__ import annotations

import pandas as pd
import pytest
from report_parser import kidney_findings

from usconvirt.errors import InputError
from usconvirt.synth.config import REPORT_STYLES, Prevalences, SynthConfig
from usconvirt.synth.corpus import plan_cohort
from usconvirt.synth.reports import phrasebook
from usconvirt.text.sentences import distinct_share, extract_sentences


def _reports(style: str, exams: int, abnormal: float = 0.5) -> pd.DataFrame:
    cohort = plan_cohort(SynthConfig(exams=exams, seed=3, report_style=style,
                                     prevalences=Prevalences(kidney_abnormal=abnormal)))
    return pd.DataFrame({"exam_id": [e.state.exam_id for e in cohort], "report": [e.report for e in cohort]})


def test_templated_reports_state_each_kidney_finding_of_their_truth():
    cohort = plan_cohort(SynthConfig(exams=500, seed=5, report_style="templated",
                                     prevalences=Prevalences(kidney_abnormal=0.8)))
    for exam in cohort:
        truth = {(side, k.finding) for side, k in exam.state.kidneys.items() if k.abnormal}
        assert kidney_findings(exam.report) == truth, exam.report


def test_templated_kidney_sentences_are_far_less_distinct_than_varied():
    shares = {s: distinct_share(extract_sentences(_reports(s, 80)))["kidney"] for s in REPORT_STYLES}
    assert shares["templated"] < 0.45 and shares["varied"] > shares["templated"] + 0.25, shares


def test_distinct_share_ignores_case_and_spacing_per_organ():
    table = pd.DataFrame({"organ": ["kidney"] * 4 + ["liver"],
                          "text": ["Reins normaux.", "reins  normaux.", "Rein droit normal.",
                                   "Reins normaux.", "Foie normal."]})
    assert distinct_share(table) == {"kidney": 0.5, "liver": 1.0}


def test_every_style_is_in_the_phrasebook_and_an_unknown_one_is_refused():
    assert set(phrasebook()["report_styles"]) == set(REPORT_STYLES)
    assert phrasebook("templated")["styles"] == ["headings"]
    assert phrasebook("templated")["organs"] == phrasebook()["organs"]  # sections it leaves alone
    with pytest.raises(InputError, match="report_style"):
        SynthConfig(report_style="terse")
    with pytest.raises(InputError, match="report_style"):
        phrasebook("terse")
