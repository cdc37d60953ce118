"""A tiny labeled kidney dataset on disk: abnormal frames carry a dark central cyst, normal ones do not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from usconvirt.data import load_dataset
from usconvirt.data.dataset import Dataset

SIZE = 32
PARTS = {"train": 10, "val": 4, "test": 8}  # exams per part, two frames (one per label) each
SENTENCES = {"normal": ["Reins de taille normale.", "Pas de dilatation des cavités."],
             "abnormal": ["Kyste du rein droit.", "Dilatation des cavités pyélocalicielles."]}


def kidney_frame(abnormal: bool, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[:SIZE, :SIZE] / SIZE
    image = 120 + rng.normal(0, 12, (SIZE, SIZE))
    if abnormal:
        image[np.hypot(y - 0.5, x - 0.5) < 0.25] = 20
    return np.clip(image, 30, 255).astype(np.uint8)  # no black border: the whole frame is the sector


def make_dataset(root: Path, seed: int = 0) -> tuple[Dataset, pd.DataFrame]:
    """(dataset, split): every exam has one normal and one abnormal frame; one patient per exam."""
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    exams, images, split = [], [], []
    for part, n in PARTS.items():
        for j in range(n):
            exam = f"{part}{j}"
            exams.append({"exam_id": exam, "patient_id": f"p-{exam}", "report": "Compte rendu."})
            split.append({"exam_id": exam, "patient_id": f"p-{exam}", "part": part})
            for label in ("normal", "abnormal"):
                image_id = f"{exam}-{label}"
                frame = kidney_frame(label == "abnormal", rng)
                Image.fromarray(frame).save(root / "frames" / f"{image_id}.png")
                images.append({"image_id": image_id, "exam_id": exam, "path": f"frames/{image_id}.png",
                               "organ": "kidney", "label": label, "side": ""})
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    return load_dataset(root), pd.DataFrame(split)


def kidney_pairs(dataset: Dataset) -> pd.DataFrame:
    """Pairs whose sentences say what the frame shows (the pairing stage's columns)."""
    images = dataset.images
    return pd.DataFrame({"image_id": images["image_id"], "exam_id": images["exam_id"],
                         "texts": [SENTENCES[label] for label in images["label"]]})


def save_tiny_convirt(directory: Path, corpus: list[str]) -> Path:
    """A randomly initialised ConVIRT (tiny encoders, SIZE px) saved as a pre-training directory."""
    from usconvirt.models.convirt import ConVIRTConfig, create_convirt, load_tokenizer, save_convirt
    from usconvirt.models.image_encoder import ImageEncoderConfig
    from usconvirt.models.text_encoder import TextEncoderConfig
    from usconvirt.text.tokenizer import train_tokenizer

    train_tokenizer(corpus, directory.parent / "tokenizer", vocab_size=120, min_frequency=1)
    torch.manual_seed(0)
    config = ConVIRTConfig(image=ImageEncoderConfig(arch="tiny"),
                           text=TextEncoderConfig(name="tiny", freeze_embeddings=False, freeze_layers=0,
                                                  max_length=32), proj_dim=8, image_size=SIZE)
    return save_convirt(create_convirt(config, load_tokenizer(directory.parent / "tokenizer")), directory)
