"""Fixtures for the data tests: an in-process CLI runner and a small on-disk dataset builder."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image


@pytest.fixture
def cli(monkeypatch, capsys) -> Callable[..., tuple[int, str]]:
    """Run `usconvirt ARGS` through `usconvirt.cli:main`; (exit code, stdout + stderr)."""
    from usconvirt.cli import main

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["usconvirt", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


@pytest.fixture
def write_dataset() -> Callable[..., Path]:
    """The dataset-writing helper below, as a fixture (test modules do not import each other)."""
    return _write_dataset


@pytest.fixture
def dataset_rows() -> Callable[..., tuple[list[dict], list[dict]]]:
    """The row-building helper below, as a fixture."""
    return _small_dataset_rows


def _write_dataset(
    root: Path, exams: list[dict], images: list[dict], *, no_file: tuple[str, ...] = ()
) -> Path:
    """A dataset directory with the given rows and a small PNG for every image path inside it."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    for row in images:
        path = root / row.get("path", "")
        if "path" in row and path.resolve().is_relative_to(root.resolve()) and row["path"] not in no_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path)
    return root


def _small_dataset_rows(n_patients: int = 12, exams_per_patient: int = 2) -> tuple[list[dict], list[dict]]:
    """Exams and two images per exam; every image labeled."""
    exams, images = [], []
    labels = ("normal", "abnormal", "absent")
    for p in range(n_patients):
        for e in range(exams_per_patient):
            exam_id = f"e{p}-{e}"
            exams.append({"exam_id": exam_id, "patient_id": f"p{p}", "report": "Reins de taille normale."})
            for i in range(2):
                images.append(
                    {
                        "image_id": f"{exam_id}-{i}",
                        "exam_id": exam_id,
                        "path": f"frames/{exam_id}-{i}.png",
                        "organ": "kidney",
                        "label": labels[(p + e + i) % 3],
                    }
                )
    return exams, images
