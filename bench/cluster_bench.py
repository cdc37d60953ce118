"""Clustering speed: training frames/s (two augmented views, forward, backward, step) and assignment frames/s.

    python bench/cluster_bench.py [--archs tiny,small] [--sizes 64,96] [--batch 128] [--steps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.module import ClusteringModule
from usconvirt.clustering.run import predict_probabilities
from usconvirt.models.image_encoder import ImageEncoderConfig


def train_rate(module: ClusteringModule, batch: torch.Tensor, steps: int) -> float:
    """Frames per second through the module's training step and an AdamW update."""
    optimizer = module.configure_optimizers()
    module.log = module.log_dict = lambda *a, **k: None  # no Trainer attached in a bare loop
    module.train()
    module.training_step(batch, 0).backward()  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        optimizer.zero_grad()
        module.training_step(batch, i).backward()
        optimizer.step()
    if batch.is_cuda:
        torch.cuda.synchronize()
    return steps * len(batch) / (time.perf_counter() - start)


def assign_rate(module: ClusteringModule, frames: np.ndarray, batch: int) -> float:
    predict_probabilities(module.model, frames[:batch], batch)  # warm-up
    start = time.perf_counter()
    predict_probabilities(module.model, frames, batch)
    return len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="tiny,small,resnet18")
    parser.add_argument("--sizes", default="64,96")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--clusters", type=int, default=16)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch}, K {args.clusters}")
    print(f"{'arch':<10}{'size':>6}{'train frames/s':>16}{'assign frames/s':>17}")
    for arch in args.archs.split(","):
        for size in map(int, args.sizes.split(",")):
            torch.manual_seed(0)
            encoder = ImageEncoderConfig(arch=arch)
            module = ClusteringModule(ClusterConfig(clusters=args.clusters, image_size=size, encoder=encoder))
            module = module.to(device)
            frames = np.random.default_rng(0).integers(0, 256, (args.batch * 4, size, size), dtype=np.uint8)
            batch = torch.from_numpy(frames[: args.batch]).unsqueeze(1).float().div(255).to(device)
            train = train_rate(module, batch, args.steps)
            assign = assign_rate(module, frames, args.batch)
            print(f"{arch:<10}{size:>6}{train:>16.1f}{assign:>17.1f}")


if __name__ == "__main__":
    main()
