"""Read UMLS-format terminology (MRCONSO.RRF, MRSTY.RRF): the shipped subset or a user's full release."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from usconvirt.errors import InputError

SUBSET_DIR = Path(__file__).resolve().parent.parent / "resources" / "umls"
MRCONSO_CUI, MRCONSO_LAT, MRCONSO_STR = 0, 1, 14
MRCONSO_FIELDS = 18


@dataclass(frozen=True)
class Terminology:
    """French terms per CUI and semantic types per CUI, restricted to the concepts a run needs."""

    terms: dict[str, tuple[str, ...]]
    semantic_types: dict[str, frozenset[str]]


def umls_dir_or_subset(umls_dir: str | Path | None) -> Path:
    """The user's UMLS directory (checked), or the shipped subset."""
    if umls_dir is None:
        return SUBSET_DIR
    path = Path(umls_dir)
    for name in ("MRCONSO.RRF", "MRSTY.RRF"):
        found = _find_rrf(path, name)
        if found is None:
            raise InputError(f"no {name} found (looked in the directory and its META/ folder)", file=path)
    return path


def _find_rrf(umls_dir: Path, name: str) -> Path | None:
    """A release keeps its RRF files either at the top or under META/."""
    for candidate in (umls_dir / name, umls_dir / "META" / name):
        if candidate.exists():
            return candidate
    return None


def rrf_paths(umls_dir: str | Path | None) -> tuple[Path, Path]:
    """(MRCONSO.RRF, MRSTY.RRF) of a UMLS directory or of the shipped subset."""
    root = umls_dir_or_subset(umls_dir)
    return _find_rrf(root, "MRCONSO.RRF"), _find_rrf(root, "MRSTY.RRF")  # type: ignore[return-value]


def rrf_hash(umls_dir: str | Path | None) -> str:
    """Content hash of the two RRF files, the cache key of indexes built from them."""
    digest = hashlib.sha256()
    for path in rrf_paths(umls_dir):
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def read_semantic_types(mrsty: Path) -> dict[str, set[str]]:
    """CUI -> semantic type ids (TUI) from MRSTY.RRF."""
    types: dict[str, set[str]] = {}
    with open(mrsty, encoding="utf-8") as fh:
        for line in fh:
            fields = line.split("|")
            if len(fields) >= 2:
                types.setdefault(fields[0], set()).add(fields[1])
    return types


def load_terminology(
    umls_dir: str | Path | None,
    *,
    semantic_types: tuple[str, ...],
    extra_cuis: tuple[str, ...] = (),
) -> Terminology:
    """French terms of the concepts whose semantic type is in `semantic_types`, plus `extra_cuis`."""
    mrconso, mrsty = rrf_paths(umls_dir)
    all_types = read_semantic_types(mrsty)
    wanted_types = set(semantic_types)
    wanted = {cui for cui, tuis in all_types.items() if tuis & wanted_types} | set(extra_cuis)
    terms: dict[str, dict[str, None]] = {}
    with open(mrconso, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            fields = line.rstrip("\n").split("|")
            if len(fields) < MRCONSO_FIELDS:
                raise InputError(
                    f"expected {MRCONSO_FIELDS} pipe-separated fields, got {len(fields)}",
                    file=mrconso,
                    row=row,
                )
            cui = fields[MRCONSO_CUI]
            if cui in wanted and fields[MRCONSO_LAT] == "FRE":
                terms.setdefault(cui, {})[fields[MRCONSO_STR].strip()] = None
    return Terminology(
        terms={cui: tuple(t) for cui, t in sorted(terms.items())},
        semantic_types={cui: frozenset(all_types.get(cui, ())) for cui in sorted(terms)},
    )


def cache_root(cache_dir: str | Path | None) -> Path:
    """Where built indexes live: the configured dir, else $XDG_CACHE_HOME/usconvirt or ~/.cache/usconvirt."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "usconvirt"
