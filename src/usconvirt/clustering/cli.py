"""Which frames the cluster stage clusters, and which name its clusters, from the split."""

from __future__ import annotations

import pandas as pd

from usconvirt.data.dataset import Dataset
from usconvirt.data.split import exams_in
from usconvirt.errors import InputError


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

