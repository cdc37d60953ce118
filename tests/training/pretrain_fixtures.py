"""A small synthetic pair set whose texts say what the frames show, so a tiny model can learn it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from usconvirt.data import load_dataset
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.text.tokenizer import train_tokenizer
from usconvirt.training.pretrain import PretrainConfig
from usconvirt.training.trainer import TrainerConfig

TEXTS = {
    0: ["Rein droit de taille normale.", "Pas de dilatation des cavités."],
    1: ["Kyste cortical du rein gauche.", "Lésion kystique anéchogène."],
    2: ["Rein hyperéchogène, dédifférenciation cortico-médullaire.", "Néphropathie chronique."],
    3: ["Lithiase rénale avec cône d'ombre.", "Calcul caliciel inférieur."],
}


def _frame(kind: int, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A frame whose pattern (blob, ring, bright, stripes) is the class the text describes."""
    y, x = np.mgrid[:size, :size] / size
    r = np.hypot(y - 0.5, x - 0.5)
    base = [r < 0.3, (r > 0.2) & (r < 0.35), r < 0.45, (np.sin(x * 25) > 0)][kind].astype(float)
    image = 40 + 180 * base + rng.normal(0, 10, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_pair_set(root: Path, n: int = 32, seed: int = 0) -> tuple:
    """(dataset, pairs, tokenizer_dir): `n` frames in n/2 exams, texts by frame class."""
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    images, pairs = [], []
    for i in range(n):
        kind = i % len(TEXTS)
        Image.fromarray(_frame(kind, rng)).save(root / "frames" / f"f{i}.png")
        images.append({"image_id": f"f{i}", "exam_id": f"e{i // 2}", "path": f"frames/f{i}.png"})
        pairs.append({"image_id": f"f{i}", "exam_id": f"e{i // 2}", "side": "", "texts": TEXTS[kind]})
    exams = pd.DataFrame({"exam_id": [f"e{j}" for j in range(n // 2)],
                          "patient_id": [f"p{j}" for j in range(n // 2)],
                          "report": [" ".join(TEXTS[2 * j % 4] + TEXTS[(2 * j + 1) % 4])
                                     for j in range(n // 2)]})
    exams.to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    dataset = load_dataset(root)
    tokenizer_dir = root / "tokenizer"
    train_tokenizer(exams["report"], tokenizer_dir, vocab_size=120, min_frequency=1)
    return dataset, pd.DataFrame(pairs), tokenizer_dir


def tiny_config(**overrides) -> PretrainConfig:
    """CPU-sized pre-training: 'tiny' encoders at 32 px, no workers, no progress bar."""
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, log_every_n_steps=1)
    values = dict(image=ImageEncoderConfig(arch="tiny", weights=None),
                  text=TextEncoderConfig(name="tiny", freeze_embeddings=False, freeze_layers=0,
                                         max_length=32),
                  proj_dim=16, batch_size=8, lr=3e-3, image_size=32, num_workers=0, epochs=1,
                  schedule="constant", trainer=trainer)
    values.update(overrides)
    return PretrainConfig(**values)
