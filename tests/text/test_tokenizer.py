"""The retrained WordPiece tokenizer: the same reports give the same vocabulary in every process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPORTS = [
    "Rein droit de taille normale, bien différencié.",
    "Kyste cortical simple du rein gauche, anéchogène.",
    "Lithiase caliciel inférieure droite avec cône d'ombre postérieur.",
    "Dilatation modérée des cavités pyélocalicielles gauches.",
    "Reins hyperéchogènes, dédifférenciation cortico-médullaire : néphropathie chronique.",
    "Vessie en réplétion, paroi fine. Prostate homogène (32 ml).",
]

# Trains in a fresh interpreter: the trainer's hash maps are seeded once per process.
TRAIN = """
import sys
from usconvirt.text.tokenizer import train_tokenizer
train_tokenizer(sys.argv[2:], sys.argv[1], vocab_size=90, min_frequency=1)
"""


def _train_in_a_new_process(out: Path, hash_seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-c", TRAIN, str(out), *REPORTS], env=env, check=True)
    return (out / "tokenizer.json").read_bytes()


def test_two_processes_train_the_same_tokenizer(tmp_path: Path) -> None:
    first = _train_in_a_new_process(tmp_path / "a", "1")
    second = _train_in_a_new_process(tmp_path / "b", "2")
    assert first == second
    assert b'"##' in first  # continuing pieces were learned, so their order was at stake
