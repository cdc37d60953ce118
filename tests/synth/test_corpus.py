"""Writing a rendered corpus: dataset format, determinism, workers, DICOM ingest, the CLI."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pydicom
import pytest
from typer.testing import CliRunner

from usconvirt.cli import app
from usconvirt.data import load_dataset
from usconvirt.data.images import read_frame
from usconvirt.errors import InputError
from usconvirt.synth import SynthConfig, generate_corpus


def _digest(root) -> str:
    h = hashlib.sha256()
    for path in sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix != ".yaml" and p.name != "truth.parquet"
    ):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    return generate_corpus(out, SynthConfig(exams=4, seed=0, image_size=64))


def test_corpus_passes_load_dataset_with_organs_labels_sides(corpus):
    ds = load_dataset(corpus)
    assert len(ds.exams) == 4 and 32 <= len(ds.images) <= 64
    kidney = ds.images[ds.images["organ"] == "kidney"]
    assert set(kidney["label"]) <= {"normal", "abnormal"} and set(kidney["side"]) <= {"left", "right"}
    others = ds.images[ds.images["organ"] != "kidney"]
    assert set(others["label"]) == {"absent"} and set(others["side"]) == {""}
    frame = read_frame(ds.image_path(ds.images["path"][0]))
    assert frame.shape == (64, 64) and frame.dtype == np.uint8 and frame.std() > 10


def test_truth_has_a_row_per_frame_with_exam_state(corpus):
    truth = pd.read_parquet(corpus / "truth.parquet")
    images = pd.read_csv(corpus / "images.csv", keep_default_na=False)
    assert list(truth["image_id"]) == list(images["image_id"])
    assert {"right_kidney", "left_kidney", "finding_visible", "cut_cm", "liver"} <= set(truth.columns)
    assert not truth.loc[truth["label"] != "abnormal", "finding_visible"].any()


def test_same_seed_same_corpus_whatever_the_workers(corpus, tmp_path):
    again = generate_corpus(tmp_path / "again", SynthConfig(exams=4, seed=0, image_size=64, workers=2))
    assert _digest(again) == _digest(corpus)
    pd.testing.assert_frame_equal(
        pd.read_parquet(again / "truth.parquet"), pd.read_parquet(corpus / "truth.parquet")
    )
    other = generate_corpus(tmp_path / "other", SynthConfig(exams=4, seed=1, image_size=64))
    assert _digest(other) != _digest(corpus)


def test_existing_output_is_not_overwritten_by_default(corpus):
    with pytest.raises(InputError, match="not empty"):
        generate_corpus(corpus, SynthConfig(exams=1, image_size=64))


def test_dicom_output_carries_fake_phi_and_ingests(tmp_path):
    from usconvirt.data.ingest import ingest_dicom

    out = generate_corpus(tmp_path / "dicom", SynthConfig(exams=2, seed=0, image_size=64, format="dicom"))
    ds = load_dataset(out)
    path = ds.image_path(ds.images["path"][0])
    header = pydicom.dcmread(path)
    assert header.Modality == "US" and str(header.PatientName) and header.PatientBirthDate
    assert read_frame(path).shape == (64, 64)
    summary = ingest_dicom(out / "frames", out / "reports_by_study.csv", tmp_path / "ingested", key="k" * 16)
    assert summary.exams == 2 and summary.frames == len(ds.images)
    ingested = load_dataset(tmp_path / "ingested")
    assert str(header.PatientName) not in ingested.exams.to_csv()


def test_cli_synth(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "synth",
            str(tmp_path / "c"),
            "--exams",
            "2",
            "--image-size",
            "48",
            "--seed",
            "3",
            "--kidney-abnormal",
            "1.0",
        ],
    )
    assert result.exit_code == 0, result.output
    truth = pd.read_parquet(tmp_path / "c" / "truth.parquet")
    assert truth.groupby("exam_id")["kidney_abnormal"].first().all()


# sha256 of the 80 reports of seed 5, joined by NUL: the reports the phrasebook code wrote before it
# became data (resources/synth/report_phrases.yaml); a change here changes every synthetic corpus.
REPORTS_SEED5_SHA256 = "bba7fb34d0177810c2fe8db47af9b8b109ff6fd316707fe70231b2925ae52bc6"


def test_reports_of_a_seed_stay_byte_identical():
    from usconvirt.synth.corpus import plan_cohort

    reports = [exam.report for exam in plan_cohort(SynthConfig(exams=80, seed=5))]
    assert hashlib.sha256("\x00".join(reports).encode()).hexdigest() == REPORTS_SEED5_SHA256


def test_phrasebook_templates_use_only_the_fields_the_generator_fills():
    import string

    from usconvirt.synth.reports import phrasebook

    book = phrasebook()
    kidney = {"of_side", "Name", "Bare", "size", "cavities", "loc_m", "loc_f", "side_adjective", "grade",
              "mm", "adjective", "pole", "count", "calyx", "pyelon_mm"}
    allowed = {"normal_kidney": kidney, "noun_phrases": kidney, "abnormal_kidney": kidney,
               "framed": {"phrase", "Bare"}, "both_kidneys_normal": {"sizes", "cavities", "right", "left"},
               "no_dilatation": {"cavities", "of_side"},
               "organs": {"span", "nodule", "stone_mm", "size", "aorta_mm"},
               "layouts": {"indication", "technique", "body", "conclusion", "sentence", "heading",
                           "sentences"}}

    def strings(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict | list):
            yield from (s for v in (node.values() if isinstance(node, dict) else node) for s in strings(v))

    for section, fields in allowed.items():
        used = {f for s in strings(book[section]) for _, f, _, _ in string.Formatter().parse(s) if f}
        assert used <= fields, (section, used - fields)
    for finding in ("cyst", "stone", "hydronephrosis", "atrophy", "mass", "angiomyolipoma", "absent"):
        assert book["abnormal_kidney"][finding], finding
