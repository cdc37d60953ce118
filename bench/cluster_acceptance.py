"""Clustering acceptance run: a synthetic corpus, one clustering run, wall time and F1 in a table.

    python bench/cluster_acceptance.py RUN_DIR [--exams 300] [--seed 4242] [--set key=value ...]

`--set` overrides ClusterConfig fields as YAML values (dots for nesting: encoder.arch=tiny).
The corpus is generated into RUN_DIR/dataset unless it is already there; the wall time includes
frame preprocessing, training, assignment and all outputs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

import usconvirt.clustering.run  # noqa: F401  # the stage imports it lazily: loaded here, out of the wall time
from usconvirt.clustering import ClusterConfig
from usconvirt.config import from_dict
from usconvirt.pipeline_config import PipelineConfig
from usconvirt.run_layout import METRICS_JSON, RunLayout
from usconvirt.stages import run_cluster
from usconvirt.synth import SynthConfig, generate_corpus


def overrides(pairs: list[str]) -> dict:
    """['encoder.arch=tiny', 'epochs=5'] -> {'encoder': {'arch': 'tiny'}, 'epochs': 5}."""
    out: dict = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return out


def cluster_all_frames(layout: RunLayout, config: ClusterConfig) -> dict:
    """The cluster stage on every frame of the layout's dataset, as `usconvirt cluster DATASET --out
    CLUSTER` runs it (no split: these datasets are scored whole); the metrics.json it wrote."""
    run_cluster(PipelineConfig(cluster=config), layout, part=None)
    return json.loads((layout.cluster / METRICS_JSON).read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--exams", type=int, default=300)
    parser.add_argument("--seed", type=int, default=4242, help="corpus seed (tests do not use it)")
    parser.add_argument("--synth-workers", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], dest="sets")
    args = parser.parse_args()
    layout = RunLayout(args.run_dir)
    if not layout.dataset_dir.exists():
        generate_corpus(layout.dataset_dir, SynthConfig(exams=args.exams, seed=args.seed,
                                                        workers=args.synth_workers))
    config = from_dict(ClusterConfig, overrides(args.sets))
    start = time.perf_counter()
    metrics = cluster_all_frames(layout, config)
    wall = time.perf_counter() - start
    print(f"{'method':>17}{'frames':>7}{'steps':>7}{'K':>4}{'size':>6}{'wall s':>8}{'weighted F1':>12}"
          f"{'kidney F1':>10}{'selected':>9}  scored on")
    print(f"{config.method:>17}{metrics['frames']:>7}{metrics['global_step']:>7}{config.clusters:>4}"
          f"{config.image_size:>6}{wall:>8.0f}{metrics.get('weighted_f1'):>12}{metrics.get('kidney_f1'):>10}"
          f"{metrics['selected']:>9}  {metrics['headline']}")
    mapped = metrics.get("mapped_scores", {})
    print(f"{'(mapping frames)':>17}{'':>32}{mapped.get('weighted_f1')!s:>12}{mapped.get('kidney_f1')!s:>10}")
    for name, row in metrics.get("baselines", {}).items():
        print(f"{name:>17}{'':>32}{row.get('weighted_f1')!s:>12}{row.get('kidney_f1')!s:>10}")
    for organ, row in metrics.get("per_organ", {}).items():
        print(f"  {organ:<12} P {row['precision']:.3f}  R {row['recall']:.3f}  F1 {row['f1']:.3f}  "
              f"n {row['support']}")


if __name__ == "__main__":
    main()
