"""A stand-in corpus of drawn shapes, one shape per 'organ', small enough for seconds of training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

SHAPES = ("kidney", "liver", "bladder")


def _draw(organ: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Speckled grey background with a bright bean (kidney), a large grey wedge (liver) or a dark disc."""
    img = Image.fromarray(rng.integers(40, 90, (size, size), dtype=np.uint8))
    draw = ImageDraw.Draw(img)
    cx, cy = rng.integers(size // 3, 2 * size // 3, 2)
    if organ == "kidney":
        draw.ellipse([cx - 14, cy - 8, cx + 14, cy + 8], fill=220)
    elif organ == "liver":
        draw.polygon([(2, 2), (size - 3, 2), (2, size - 3)], fill=150)
    else:
        draw.ellipse([cx - 12, cy - 12, cx + 12, cy + 12], fill=5)
    return np.asarray(img)


def make_shapes_dataset(root: Path, n_exams: int = 20, per_exam: int = 3, seed: int = 0,
                        labeled: bool = True) -> Path:
    rng = np.random.default_rng(seed)
    (root / "frames").mkdir(parents=True)
    exams, images = [], []
    for e in range(n_exams):
        exams.append({"exam_id": f"e{e}", "patient_id": f"p{e}", "report": "Reins normaux."})
        for i in range(per_exam):
            organ = SHAPES[(e * per_exam + i) % len(SHAPES)]
            path = f"frames/e{e}_{i}.png"
            Image.fromarray(_draw(organ, rng)).save(root / path)
            images.append({"image_id": f"e{e}_{i}", "exam_id": f"e{e}", "path": path,
                           "organ": organ if labeled else ""})
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    return root


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory) -> Path:
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "ds")
