"""The retrained WordPiece tokenizer: the same reports give the same vocabulary in every process."""

from __future__ import annotations

from pathlib import Path

REPORTS = [
    "Rein droit de taille normale, bien différencié.",
    "Kyste cortical simple du rein gauche, anéchogène.",
    "Lithiase caliciel inférieure droite avec cône d'ombre postérieur.",
    "Dilatation modérée des cavités pyélocalicielles gauches.",
    "Reins hyperéchogènes, dédifférenciation cortico-médullaire : néphropathie chronique.",
    "Vessie en réplétion, paroi fine. Prostate homogène (32 ml).",
]
# in a new process each time: the trainer's hash maps are seeded once per process
TRAIN = """
import sys
from usconvirt.text.tokenizer import train_tokenizer
train_tokenizer(sys.argv[2:], sys.argv[1], vocab_size=90, min_frequency=1)
"""


def test_two_processes_train_the_same_tokenizer(tmp_path: Path, new_process) -> None:
    new_process(TRAIN, tmp_path / "a", *REPORTS, hash_seed="1")
    new_process(TRAIN, tmp_path / "b", *REPORTS, hash_seed="2")
    first, second = ((tmp_path / run / "tokenizer.json").read_bytes() for run in "ab")
    assert first == second
    assert b'"##' in first  # continuing pieces were learned, so their order was at stake
