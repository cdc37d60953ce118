"""Samples/s of the pre-training data path per loader worker, and the workers needed to feed a GPU.

    OMP_NUM_THREADS=1 python bench/loader_bench.py                     # 224 px, batch 256, 0/1/2 workers
    python bench/loader_bench.py --workers 0 1 2 4 8 --target 2000     # on a bigger machine

The loader is the one pre-training uses (`pair_loader`: PairDataset over the memory-mapped frame cache,
one sentence drawn per pair, tokenised in the worker by PairCollate). Augmentation runs on the training
device on whole batches (`augment_batch`), not in the loader; its CPU cost is printed on its own line for
CPU-only runs. Frames are random (speed does not depend on content); the cache is a real .npy memory map,
mapped copy-on-write as `load_frames` returns it. On a shared machine the rates are lower bounds (`load`
is printed); samples per CPU-second (main process and workers together) do not depend on the load.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pretrain_bench import sentences  # same report-like sentences as the pre-training bench
from usconvirt.data.augment import augment_batch, build_augment
from usconvirt.models.convirt import load_tokenizer
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.text.tokenizer import train_tokenizer
from usconvirt.training.pretrain import PairDataset, PretrainConfig, pair_loader


def cached_frames(root: Path, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A memory-mapped (n, size, size) uint8 cache file, mapped as `load_frames` returns it."""
    path = root / f"frames_{size}.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size))
    for start in range(0, n, 512):
        array[start:start + 512] = rng.integers(0, 256, (min(512, n - start), size, size), dtype=np.uint8)
    array.flush()
    del array
    return np.load(path, mmap_mode="c")


def cpu_seconds() -> float:
    """User + system time of this process and of its children that have exited (joined workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def loader_rate(data: PairDataset, tokenizer, config: PretrainConfig, batches: int, warmup: int,
                ) -> tuple[float, float]:
    """Samples/s over `batches` batches after `warmup` (worker start-up excluded), and samples per CPU
    second of the main process and its workers together over the whole run (independent of the load)."""
    cpu_before = cpu_seconds()
    loader = pair_loader(data, tokenizer, config)
    seen, total, start, i = 0, 0, 0.0, 0
    while i <= warmup + batches:  # as many epochs as it takes (persistent workers stay up)
        for batch in loader:
            if i == warmup:
                start = time.perf_counter()
            elif i > warmup:
                seen += len(batch["images"])
            total += len(batch["images"])
            i += 1
            if i > warmup + batches:
                break
    rate = seen / (time.perf_counter() - start)
    del batch, loader
    gc.collect()  # shuts the persistent workers down and joins them, so their CPU time is counted
    return rate, total / (cpu_seconds() - cpu_before)


def augment_rate(config: PretrainConfig, batch: int, rounds: int = 3) -> float:
    """Samples/s of the batched augmentation on the CPU (where a CPU-only run does it)."""
    augment = build_augment(config.augment, config.image_size)
    images = torch.rand(batch, 1, config.image_size, config.image_size)
    augment_batch(augment, images)
    start = time.perf_counter()
    for _ in range(rounds):
        augment_batch(augment, images)
    return rounds * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batches", type=int, default=8, help="timed batches per setting")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--target", type=float, default=2000.0, help="samples/s the GPU needs")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    texts = sentences(args.frames, rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames = cached_frames(root, args.frames, args.size, rng)
        train_tokenizer([t for ts in texts for t in ts], root / "tokenizer", vocab_size=4000, min_frequency=1)
        tokenizer = load_tokenizer(root / "tokenizer")
        data = PairDataset(frames, texts)
        print(f"pre-training loader, {args.size} px, batch {args.batch_size}, {args.frames} pairs, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        print(f"{'workers':>7s} {'samples/s':>10s} {'per worker':>11s} {'per CPU-s':>10s}")
        per_worker, per_cpu = [], []
        for workers in args.workers:
            config = PretrainConfig(batch_size=args.batch_size, image_size=args.size, num_workers=workers,
                                    text=TextEncoderConfig(name="tiny", max_length=128))
            rate, cpu_rate = loader_rate(data, tokenizer, config, args.batches, args.warmup)
            share = rate / workers if workers else rate
            if workers:
                per_worker.append(share)
                per_cpu.append(cpu_rate)
            print(f"{workers:7d} {rate:10.0f} {share:11.0f} {cpu_rate:10.0f}", flush=True)
        config = PretrainConfig(batch_size=args.batch_size, image_size=args.size)
        augment = augment_rate(config, args.batch_size)
        print(f"augmentation on the CPU (one thread per process): {augment:.0f} samples/s "
              f"(on a GPU run it runs on the device)")
        if per_worker:
            best, cpu_best = max(per_worker), max(per_cpu)
            print(f"workers needed for {args.target:,.0f} samples/s: {math.ceil(args.target / best)} at the "
                  f"measured {best:.0f} samples/s per worker; {math.ceil(args.target / cpu_best)} with one "
                  f"free core each ({cpu_best:.0f} samples per CPU-second)")

if __name__ == "__main__":
    main()
