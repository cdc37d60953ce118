"""Cluster-to-organ mapping: from the labeled frames (majority vote or Hungarian) or a user's YAML file."""

from __future__ import annotations

import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from usconvirt.config import load_yaml, save_yaml
from usconvirt.data.dataset import ORGANS
from usconvirt.errors import InputError

UNMAPPED = ""  # organ of a cluster no labeled frame (or mapping file) names


def majority_mapping(clusters: np.ndarray, organs: list[str], k: int) -> dict[int, str]:
    """Each cluster takes the most frequent organ among its labeled frames (over-clustering allowed)."""
    mapping = {}
    for c in range(k):
        votes = Counter(o for o, ci in zip(organs, clusters, strict=True) if ci == c and o)
        mapping[c] = min(votes, key=lambda o: (-votes[o], o)) if votes else UNMAPPED
    return mapping


def fill_unmapped(mapping: dict[int, str], centroids: np.ndarray) -> dict[int, str]:
    """Clusters that no labelled frame named take the organ of the nearest named centroid: with
    over-clustering a few small clusters get no mapping frame, and their frames would count as missed."""
    named = [c for c in range(len(centroids)) if mapping.get(c, UNMAPPED) != UNMAPPED]
    if not named:
        return mapping
    filled = dict(mapping)
    for c in range(len(centroids)):
        if filled.get(c, UNMAPPED) == UNMAPPED:
            d2 = ((centroids[named].astype(np.float64) - centroids[c]) ** 2).sum(1)
            filled[c] = mapping[named[int(d2.argmin())]]
    return filled


def hungarian_mapping(clusters: np.ndarray, organs: list[str], k: int) -> dict[int, str]:
    """One-to-one mapping maximising agreement; for K equal to the number of organs."""
    names = sorted({o for o in organs if o})
    counts = np.zeros((k, len(names)), dtype=np.int64)
    index = {o: j for j, o in enumerate(names)}
    for o, c in zip(organs, clusters, strict=True):
        if o:
            counts[c, index[o]] += 1
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = dict.fromkeys(range(k), UNMAPPED)
    mapping.update({int(r): names[c] for r, c in zip(rows, cols, strict=True)})
    return mapping


def mapping_from_labels(clusters: np.ndarray, organs: list[str], k: int,
                        method: str = "auto") -> dict[int, str]:
    """'auto' is Hungarian when K equals the number of labeled organs, majority vote otherwise."""
    n_organs = len({o for o in organs if o})
    if method == "auto":
        method = "hungarian" if k == n_organs else "majority"
    if method == "hungarian":
        return hungarian_mapping(clusters, organs, k)
    if method == "majority":
        return majority_mapping(clusters, organs, k)
    raise InputError(f"unknown mapping method '{method}', expected auto, majority or hungarian",
                     field="mapping")


def mapping_part(exam_ids: list[str], fraction: float, seed: int = 0) -> np.ndarray:
    """True for frames whose exam names the clusters, False for the held-out exams that are scored.

    A keyed hash of the exam id decides, so all frames of an exam fall on one side and the choice does not
    change when exams are added. With fraction >= 1 every frame maps (and nothing is held out).
    """
    if fraction >= 1:
        return np.ones(len(exam_ids), bool)
    return np.array([zlib.crc32(f"{seed}:{e}".encode()) % 1000 < 1000 * fraction for e in exam_ids], bool)


def kidney_mapping_from_labels(clusters: np.ndarray, labels: list[str], k: int) -> dict[int, str]:
    """Name clusters from normal/abnormal labels (kidney frames by definition) when no organ labels exist.

    With `absent` labels too (frames known to show no kidney), each cluster takes the majority of kidney
    vs not among its labelled frames. With kidney labels only, a cluster is a kidney cluster when its
    share of labelled frames is at least the share over all frames: labels fall in kidney clusters and
    almost never elsewhere.
    """
    clusters = np.asarray(clusters)
    kidney = np.array([lab in ("normal", "abnormal") for lab in labels])
    absent = np.array([lab == "absent" for lab in labels])
    mapping = dict.fromkeys(range(k), UNMAPPED)
    overall = kidney.mean() if len(kidney) else 0.0
    for c in range(k):
        members = clusters == c
        if not members.any():
            continue
        if absent.any():
            if kidney[members].sum() > absent[members].sum():
                mapping[c] = "kidney"
        elif overall > 0 and kidney[members].mean() >= overall:
            mapping[c] = "kidney"
    return mapping


def load_mapping(path: str | Path, k: int) -> dict[int, str]:
    """Read a user-edited YAML `{cluster: organ}`; clusters left out stay unmapped."""
    data = load_yaml(path)
    mapping = dict.fromkeys(range(k), UNMAPPED)
    for key, organ in data.items():
        try:
            cluster = int(key)
        except (TypeError, ValueError):
            raise InputError(f"cluster '{key}' is not an integer", file=path, field=str(key)) from None
        if not 0 <= cluster < k:
            raise InputError(f"cluster {cluster} out of range 0..{k - 1}", file=path, field=str(key))
        organ = "" if organ is None else str(organ).strip()
        if organ and organ not in ORGANS:
            raise InputError(f"unknown organ '{organ}', expected one of {', '.join(ORGANS)}", file=path,
                             field=str(key))
        mapping[cluster] = organ
    if not any(mapping.values()):  # an emptied or truncated file would select no frame, and exit 0
        raise InputError("maps no cluster to an organ; expected lines 'CLUSTER: ORGAN'", file=path)
    return mapping


def save_mapping(mapping: dict[int, str], path: str | Path) -> Path:
    """Write the mapping as YAML that `load_mapping` reads back (and a user can edit)."""
    return save_yaml({int(c): o or None for c, o in sorted(mapping.items())}, path)
