"""Own data end to end, as the README's own-data section says: a PACS-style DICOM export (nested folders,
DICOMDIR, non-DICOM files), reports as a `;`-separated cp1252 CSV keyed by AccessionNumber, kidney labels
keyed by SOPInstanceUID and no organ labels, from `usconvirt ingest` to the report with one config."""

from __future__ import annotations

import shutil

import pandas as pd
import pydicom
import pytest
import yaml

from usconvirt.io import read_table
from usconvirt.synth.config import Prevalences, SynthConfig
from usconvirt.synth.corpus import generate_corpus

CPU = {"accelerator": "cpu", "devices": "1", "progress_bar": False}


@pytest.fixture(scope="module")
def pacs_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    synth = root / "synth"
    generate_corpus(synth, SynthConfig(exams=40, seed=21, image_size=64, format="dicom",
                                       prevalences=Prevalences(kidney_abnormal=0.5)))
    images = read_table(synth / "images.csv")
    reports = read_table(synth / "reports_by_study.csv").set_index("StudyInstanceUID")["report"]
    export, accession, label_rows = root / "export", {}, []
    for n, row in enumerate(images.itertuples()):
        header = pydicom.dcmread(synth / row.path, stop_before_pixels=True)
        folder = export / f"{header.PatientName}".replace("^", "_") / "US"  # PACS folders hold names
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(synth / row.path, folder / f"IM{n:05d}")
        accession[header.StudyInstanceUID] = header.AccessionNumber
        if row.label in ("normal", "abnormal"):  # the team annotated kidney frames only, by SOP UID
            label_rows.append({"SOPInstanceUID": header.SOPInstanceUID, "label": row.label})
    (export / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    (export / "notes.txt").write_text("export log")
    table = "AccessionNumber;report\r\n" + "".join(
        f"{accession[uid]};{text.replace(chr(10), ' ')}\r\n" for uid, text in reports.items())
    (root / "reports.csv").write_bytes(table.encode("cp1252", errors="replace"))
    pd.DataFrame(label_rows).to_csv(root / "labels.csv", index=False)
    return root


def test_a_pacs_export_runs_from_ingest_to_report_with_one_config(pacs_export, cli):
    root = pacs_export
    code, out = cli("ingest", root / "export", "--reports", root / "reports.csv", "--link", "AccessionNumber",
                    "--labels", root / "labels.csv", "--out", root / "dataset", "--key", "team-secret-42",
                    "--workers", "1")
    assert code == 0, out
    images = read_table(root / "dataset" / "images.csv")
    assert (images["organ"].fillna("") == "").all() and images["label"].isin(["normal", "abnormal"]).any()

    config = {
        "dataset": str(root / "dataset"),
        "split": {"labeled_fraction": 0.6, "train": 0.5, "val": 0.2, "test": 0.3},
        "cluster": {"image_size": 32, "select": "kidney", "workers": 1},
        "tokenizer": {"vocab_size": 300, "min_frequency": 1},
        "pretrain": {"image": {"arch": "tiny"},
                     "text": {"name": "tiny", "pooling": "mean", "freeze_layers": 0, "max_length": 32},
                     "image_size": 32, "proj_dim": 16, "batch_size": 8, "epochs": 1, "num_workers": 0,
                     "trainer": CPU},
        "finetune_inits": ["random", "convirt"],
        "finetune": {"epochs": 1, "patience": 1, "batch_size": 16, "trainer": CPU},
        "evaluation": {"n_bootstrap": 20},
    }
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    code, out = cli("run", root / "run.yaml", "--out", root / "run")
    assert code == 0, out
    metrics = read_table(root / "run" / "cluster" / "selected.csv")
    assert len(metrics) > 0  # the labelled frames named the kidney clusters: no mapping file was needed
    assert (root / "run" / "report.html").exists()
    assert "test macro-F1" in out
