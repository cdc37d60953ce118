"""The `usconvirt cluster` command's glue: config file + flags + split -> run_clustering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from usconvirt.clustering.config import ClusterConfig
from usconvirt.clustering.run import run_clustering
from usconvirt.config import config_from_file
from usconvirt.data.dataset import ORGANS, load_dataset
from usconvirt.errors import InputError
from usconvirt.io import read_table


def cluster_command(dataset: Path, out: Path, *, config_file: Path | None = None,
                    mapping_file: Path | None = None, split_file: Path | None = None, part: str = "pretrain",
                    arch: str | None = None, **overrides) -> dict:
    """Build the config (file, then flags that are set), pick the split's frames, run the stage."""
    config = config_from_file(ClusterConfig, config_file, "cluster", overrides)
    if arch is not None:
        config = replace(config, encoder=replace(config.encoder, arch=arch))
    if config.select is not None and config.select not in ORGANS:
        raise InputError(f"unknown organ '{config.select}', expected one of {', '.join(ORGANS)}",
                         field="select")
    ds = load_dataset(dataset)
    image_ids = None
    if split_file is not None:
        split = read_table(split_file)
        if "exam_id" not in split or "part" not in split:
            raise InputError("expected columns exam_id and part", file=split_file)
        exams = set(split.loc[split["part"] == part, "exam_id"])
        if not exams:
            raise InputError(f"no exam in part '{part}'", file=split_file, field="part")
        image_ids = ds.images.loc[ds.images["exam_id"].isin(exams), "image_id"].tolist()
    return run_clustering(ds, out, config, image_ids=image_ids, mapping_file=mapping_file)
