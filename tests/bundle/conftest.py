"""A tiny trained run (synth, split, cluster, fine-tune, evaluate) and its bundle, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.run import run_clustering
from usconvirt.data import load_dataset
from usconvirt.data.split import SplitConfig, split_dataset
from usconvirt.evaluation.evaluate import evaluate_runs
from usconvirt.evaluation.exam_level import dataset_sides
from usconvirt.io import write_table
from usconvirt.models.convirt import ConVIRTConfig, create_convirt, load_tokenizer, save_convirt
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.synth.config import Prevalences, SynthConfig
from usconvirt.synth.corpus import generate_corpus
from usconvirt.text.tokenizer import train_tokenizer
from usconvirt.training.finetune import FinetuneConfig, finetune
from usconvirt.training.trainer import TrainerConfig

KEY = "bundle-test-key-42"
PROMPT = "dilatation des cavités pyélocalicielles"
CPU = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False)


def tiny_run(root: Path) -> Path:
    """RUN/{dataset, split.csv, cluster, finetune/random, evaluation} in about 20 s on one core."""
    run = root / "run"
    generate_corpus(run / "dataset", SynthConfig(exams=30, seed=11, image_size=64,
                                                 prevalences=Prevalences(kidney_abnormal=0.5)))
    dataset = load_dataset(run / "dataset")
    split = split_dataset(dataset, SplitConfig(labeled_fraction=0.7, train=0.5, val=0.25, test=0.25))
    write_table(split, run / "split.csv")
    cluster = ClusterConfig(clusters=8, epochs=1, image_size=32, batch_size=64,
                            encoder=ImageEncoderConfig(arch="tiny"), trainer=CPU)
    run_clustering(dataset, run / "cluster", cluster)
    finetune(dataset, split, run / "finetune" / "random",
             FinetuneConfig(arch="tiny", image_size=32, epochs=2, patience=2, batch_size=16, trainer=CPU))
    evaluate_runs({"random": run / "finetune" / "random"}, run / "evaluation", n_bootstrap=50,
                  sides=dataset_sides(run / "dataset"))
    save_random_convirt(run / "pretrain", dataset.exams["report"].tolist())
    return run


def save_random_convirt(directory: Path, reports: list[str]) -> Path:
    """A pre-training directory with random tiny encoders at 48 px (another size than the classifier's)."""
    train_tokenizer(reports, directory.parent / "tokenizer", vocab_size=120, min_frequency=1)
    torch.manual_seed(0)
    config = ConVIRTConfig(image=ImageEncoderConfig(arch="tiny"),
                           text=TextEncoderConfig(name="tiny", pooling="mean", freeze_embeddings=False,
                                                  freeze_layers=0, max_length=32), proj_dim=8, image_size=48)
    return save_convirt(create_convirt(config, load_tokenizer(directory.parent / "tokenizer")), directory)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The tiny run exported to a bundle, then the run deleted except for what the tests compare with."""
    from usconvirt.bundle.export import ExportConfig, export_bundle

    root = tmp_path_factory.mktemp("bundle")
    run = tiny_run(root)
    result = export_bundle(run, root / "bundle", ExportConfig(n_bootstrap=50, with_text=True))
    kept = root / "kept"
    shutil.copytree(run / "dataset", kept / "dataset")
    shutil.copy(run / "split.csv", kept / "split.csv")
    shutil.copytree(run / "evaluation", kept / "evaluation")
    shutil.copytree(run / "finetune" / "random", kept / "finetune")
    shutil.copy(run / "cluster" / "assignments.csv", kept / "assignments.csv")
    shutil.rmtree(run)  # the bundle must stand alone
    return {"bundle": root / "bundle", "kept": kept, "result": result}


@pytest.fixture(scope="session")
def dicom_export(tmp_path_factory) -> Path:
    """A fresh synthetic DICOM export (another seed, fake PHI in the headers) with two corrupt files, one
    in a folder named like a patient."""
    root = tmp_path_factory.mktemp("dicom") / "export"
    generate_corpus(root, SynthConfig(exams=6, seed=99, image_size=64, format="dicom"))
    (root / "frames" / "DUPONT_JEAN").mkdir()  # folders named after the patient, as some PACS write them
    (root / "frames" / "DUPONT_JEAN" / "broken.dcm").write_bytes(b"DICM but not really a DICOM file")
    noise = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    (root / "frames" / "magic_noise").write_bytes(bytes(128) + b"DICM" + noise)  # parses as unknown tags
    return root




@pytest.fixture(scope="session")
def predicted(exported, dicom_export, tmp_path_factory, run_main):
    """`usconvirt predict` on the DICOM export with maps, a prompt and the review page, through the CLI,
    with the log captured."""
    root = tmp_path_factory.mktemp("predicted")
    out, id_map = root / "out", root / "private" / "ids.csv"
    code, output = run_main("predict", exported["bundle"], dicom_export, "--out", out, "--key", KEY,
                            "--id-map", id_map, "--workers", "2", "--review", "--prompt", PROMPT)
    return out, id_map, code, output
