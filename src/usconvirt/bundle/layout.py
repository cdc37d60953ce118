"""The bundle's files and its manifest (bundle.json): what a bundle must hold, and who may read it."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from usconvirt.errors import InputError
from usconvirt.io import write_json

FORMAT = "usconvirt-bundle"
MANIFEST = "bundle.json"
CLASSIFIER_DIR = "classifier"  # image_encoder/ (transformers layout), head.safetensors, classifier.json
ORGAN_DIR = "organ_model"  # organ_model.json + encoder/, head.safetensors (deep) or kmeans/ (k-means)
PREPROCESSING = "preprocessing.json"
DECISION = "decision.json"
MODEL_CARD = "model_card.md"
CLASSIFIER_ONNX = "classifier.onnx"
ORGAN_ONNX = "organ_model.onnx"
TEXT_DIR = "text_model"  # optional (export --with-text): ConVIRT's encoders, tokenizer and projections


def package_version() -> str:
    """The installed usconvirt's version (read from its metadata: importing usconvirt here is a cycle)."""
    return version("usconvirt")


def major(number: str) -> int:
    try:
        return int(str(number).split(".")[0])
    except ValueError:
        return -1


def write_manifest(root: Path, info: dict[str, Any]) -> Path:
    """bundle.json: format, package version and every file the bundle holds (checked when loading)."""
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    manifest = {"format": FORMAT, "usconvirt_version": package_version(), **info, "files": files}
    write_json(manifest, root / MANIFEST)
    return root / MANIFEST


def read_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest, after refusing a bundle of another major version or with a missing file."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise InputError(f"not a usconvirt bundle (no {MANIFEST})", file=root)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"unreadable manifest ({type(err).__name__})", file=path) from err
    if manifest.get("format") != FORMAT:
        raise InputError(f"not a usconvirt bundle (format {manifest.get('format')!r})", file=path,
                         field="format")
    written, current = str(manifest.get("usconvirt_version", "")), package_version()
    if major(written) != major(current):
        raise InputError(f"bundle written by usconvirt {written}, this is {current}: another major "
                         f"version; re-export it with this version", file=path, field="usconvirt_version")
    for name in manifest.get("files", []):
        if not (root / name).is_file():
            raise InputError("bundle file is missing", file=root / name)
    return manifest
