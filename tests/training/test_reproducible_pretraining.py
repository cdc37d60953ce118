"""The same tiny pre-training, run in two processes, writes the same tokenizer and weights bit for bit."""

from __future__ import annotations

from pathlib import Path

# The tokenizer is retrained in each process, and sentences are drawn in loader workers.
RUN = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from pretrain_fixtures import make_pair_set, tiny_config
from usconvirt.training.pretrain import pretrain
root = Path(sys.argv[1])
dataset, pairs, tokenizer_dir = make_pair_set(root / "dataset")
config = tiny_config(epochs=2, num_workers=2, sample_sentence=True)
pretrain(dataset, pairs, tokenizer_dir, root / "out", config)
"""
OUTPUTS = ("tokenizer/tokenizer.json", "image_encoder/model.safetensors", "text_encoder/model.safetensors",
           "projections.pt", "loss.csv")


def test_two_processes_pretrain_the_same_model(tmp_path: Path, new_process) -> None:
    for run, hash_seed in (("a", "1"), ("b", "2")):
        new_process(RUN, tmp_path / run, Path(__file__).parent, hash_seed=hash_seed)
    first, second = ({name: (tmp_path / run / "out" / name).read_bytes() for name in OUTPUTS} for run in "ab")
    assert [name for name in OUTPUTS if first[name] != second[name]] == []
