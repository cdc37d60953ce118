"""Memory of DDP CPU ranks reading the frame cache: file-backed (shared pages) against one copy per rank.

    OMP_NUM_THREADS=1 python bench/data/ddp_memory_bench.py [--frames 6000 --size 224]

Each rank (gloo, torch.multiprocessing) gets all frames in a shuffled order (a selection, like
pre-training's pairs) through `load_frames`, wraps a small CNN in DistributedDataParallel, trains one
epoch over its DistributedSampler share, then reads every frame once more (as a rank does over several
shuffled epochs). Modes: `copy`, every rank holds its own in-memory copy (what `load_frames` returned
for a selection before the file-backed selections); `selection`, `load_frames(..., image_ids=...)` now:
the selection written once to its own file and mapped copy-on-write; `view`, `lazy=True`'s FrameView of
the cache. The parent samples each rank's /proc smaps_rollup every 0.1 s. Printed: the largest rank's
peak RSS (what `time -v` shows; it counts shared file pages in every rank that touched them) and the
peak of the ranks' summed PSS (shared pages divided among the ranks that map them: the memory used),
and of its anonymous part (what the kernel cannot drop: file pages of a map are reclaimable page cache).
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.multiprocessing as tmp_mp

from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import FrameDataset, load_frames, write_cache_index

MODES = {"copy": "in-memory copy", "selection": "selection file (mmap)", "view": "FrameView (mmap)"}


def rank_main(rank: int, world: int, port: int, cache: str, mode: str, batch: int, size: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    dataset, pairs = bench_dataset(Path(cache))
    root = dataset.root
    if mode == "copy":  # what an in-memory selection costs (load_frames before the file-backed selections)
        frames = np.asarray(load_frames(dataset, size, image_ids=pairs, cache_dir=root, lazy=True)[0])
    else:
        frames = load_frames(dataset, size, image_ids=pairs, cache_dir=root, lazy=mode == "view")[0]
    data = FrameDataset(frames)
    sampler = torch.utils.data.DistributedSampler(data, num_replicas=world, rank=rank, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=sampler)
    nn = torch.nn
    model = nn.parallel.DistributedDataParallel(nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    for x in loader:
        loss = model(x).logsumexp(1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    checksum = sum(int(np.asarray(frames[i])[0, 0]) for i in range(len(frames)))  # touch every frame
    dist.barrier()
    dist.destroy_process_group()
    del checksum


def bench_dataset(cache: Path) -> tuple[Dataset, list[str]]:
    """A dataset whose frame cache is `cache` (no image files needed: the cache matches), and a selection
    of all its frames in shuffled order, as pre-training's pairs are."""
    n = np.load(cache, mmap_mode="r").shape[0]
    ids = [f"img-{i:06d}" for i in range(n)]
    dataset = Dataset(cache.parent, pd.DataFrame({"exam_id": ["e"], "patient_id": ["p"], "report": ["r"]}),
                      pd.DataFrame({"image_id": ids, "exam_id": "e", "path": ""}))
    return dataset, [ids[i] for i in np.random.default_rng(0).permutation(n)]


def smaps(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, flags=re.M)}


def measure(world: int, cache: str, mode: str, batch: int, size: int, port: int,
            ) -> tuple[float, float, float]:
    """(largest rank's peak RSS, peak summed PSS, peak summed anonymous PSS) in MB."""
    context = tmp_mp.start_processes(rank_main, args=(world, port, cache, mode, batch, size), nprocs=world,
                                     join=False, start_method="spawn")
    peak_rss, peak_pss, peak_anon = 0, 0, 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_rss, peak_pss, peak_anon
        while not done.is_set():
            stats = [smaps(p.pid) for p in context.processes]
            peak_rss = max([peak_rss] + [s.get("Rss", 0) for s in stats])
            peak_pss = max(peak_pss, sum(s.get("Pss", 0) for s in stats))
            peak_anon = max(peak_anon, sum(s.get("Pss_Anon", 0) for s in stats))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    while not context.join():
        pass
    done.set()
    sampler.join()
    return peak_rss / 1024, peak_pss / 1024, peak_anon / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / f"frames_{args.size}.npy"
        boxes = np.tile(np.array([0, 0, args.size, args.size, 0], np.int32), (args.frames, 1))
        write_cache_index(Path(tmp) / f"frames_{args.size}.ids.csv",
                          [f"img-{i:06d}" for i in range(args.frames)], boxes)
        array = np.lib.format.open_memmap(cache, mode="w+", dtype=np.uint8,
                                          shape=(args.frames, args.size, args.size))
        rng = np.random.default_rng(0)
        for start in range(0, args.frames, 500):
            array[start:start + 500] = rng.integers(0, 256, array[start:start + 500].shape, dtype=np.uint8)
        array.flush()
        del array
        size_mb = cache.stat().st_size / 2**20
        print(f"cache: {args.frames} frames at {args.size} px = {size_mb:.0f} MB; "
              f"load {os.getloadavg()[0]:.1f}")
        print(f"{'frames held as':22s} {'ranks':>5s} {'max rank RSS MB':>16s} {'sum PSS MB':>11s} "
              f"{'sum anon PSS MB':>16s}")
        results = {}
        dataset, pairs = bench_dataset(cache)
        load_frames(dataset, args.size, image_ids=pairs, cache_dir=cache.parent)  # the selection file, once
        runs = [(mode, world) for mode in MODES for world in (1, 2)]
        for i, (mode, world) in enumerate(runs):
            rss, pss, anon = measure(world, str(cache), mode, args.batch_size, args.size, 29500 + i)
            results[mode, world] = pss
            print(f"{MODES[mode]:22s} {world:5d} {rss:16.0f} {pss:11.0f} {anon:16.0f}", flush=True)
        for mode in MODES:
            print(f"{mode}: 2 ranks use {results[mode, 2] / results[mode, 1]:.2f}x one rank's memory "
                  f"(+{results[mode, 2] - results[mode, 1]:.0f} MB for the second rank)")


if __name__ == "__main__":
    main()
