"""The `usconvirt cluster` command's glue: config file + flags + split -> run_clustering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.run import run_clustering
from usconvirt.config import config_from_file
from usconvirt.data.dataset import Dataset, load_dataset
from usconvirt.data.split import exams_in
from usconvirt.errors import InputError
from usconvirt.io import read_table, require_columns


def split_frames(ds: Dataset, split: pd.DataFrame, part: str = "pretrain",
                 source: str = "split") -> tuple[list[str], list[str]]:
    """The frames to cluster (those of `part`) and the labelled train frames that name the clusters.

    Train frames are never clustered on nor selected: they only name clusters (normal/abnormal frames are
    kidney frames) and score the mapping, so the CLI and the pipeline pick the same frames.
    """
    exams = exams_in(split, part)
    if not exams:
        raise InputError(f"no exam in part '{part}'", file=source, field="part")
    naming = exams_in(split, "train") if part != "train" else set()
    in_exams = ds.images["exam_id"].isin
    return (ds.images.loc[in_exams(exams), "image_id"].tolist(),
            ds.images.loc[in_exams(naming), "image_id"].tolist())


def cluster_command(dataset: Path, out: Path, *, config_file: Path | None = None,
                    mapping_file: Path | None = None, split_file: Path | None = None, part: str = "pretrain",
                    arch: str | None = None, **overrides) -> dict:
    """Build the config (file, then flags that are set), pick the split's frames, run the stage."""
    config = config_from_file(ClusterConfig, config_file, "cluster", overrides)
    if overrides.get("clusters") is not None and config.candidates:  # --clusters K: each candidate at K
        config = replace(config, candidates=tuple(
            f"{c.partition(':')[0]}:{config.clusters}" for c in config.candidates))
    if arch is not None:
        config = replace(config, encoder=replace(config.encoder, arch=arch))
    ds = load_dataset(dataset)
    image_ids = mapping_ids = None
    if split_file is not None:
        split = read_table(split_file)
        require_columns(split, ("exam_id", "part"), split_file)
        image_ids, mapping_ids = split_frames(ds, split, part, source=str(split_file))
    return run_clustering(ds, out, config, image_ids=image_ids, mapping_file=mapping_file,
                          mapping_ids=mapping_ids)
