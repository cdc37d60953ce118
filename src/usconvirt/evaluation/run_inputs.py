"""Reading a run directory's files for the evaluation stages: its dataset and its JSON summaries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from usconvirt.config import load_yaml
from usconvirt.data.dataset import Dataset, load_dataset
from usconvirt.errors import InputError
from usconvirt.run_layout import CONTROL_DIRS, RunLayout


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; {} when the file does not exist, an InputError when it is not JSON."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"invalid JSON: {err}", file=path) from err
    return data if isinstance(data, dict) else {"value": data}


def load_run_dataset(layout: RunLayout, dataset: str | Path | None) -> Dataset | None:
    """The dataset given, else the run config's `dataset`, else RUN/dataset; None when there is none."""
    if dataset is None and layout.resolved_config.exists():
        dataset = load_yaml(layout.resolved_config).get("dataset")
    root = Path(dataset) if dataset else layout.dataset_dir
    if not root.is_dir():
        return None
    return load_dataset(root, check_files=False)


def pretraining_runs(layout: RunLayout) -> dict[str, Path]:
    """Name -> directory of every pre-training run the run holds: ConVIRT's and each control's."""
    names = {"ConVIRT": "convirt", **{name: name for name in CONTROL_DIRS}}
    return {label: layout.pretraining(init) for label, init in names.items()
            if layout.pretraining(init).is_dir()}
