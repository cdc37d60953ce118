"""Loud, one-line failures instead of silent ones: too few selected frames, one cluster taking most."""

from __future__ import annotations

import numpy as np


def health_problems(clusters: np.ndarray, selected: int, k: int, select: str | None,
                    min_select_share: float, max_cluster_share: float) -> list[str]:
    """Sentences naming what looks wrong with a clustering result (empty when nothing does)."""
    n = len(clusters)
    problems = []
    if select and n and selected < min_select_share * n:
        problems.append(f"only {selected} of {n} frames ({100 * selected / n:.1f}%) landed in {select} "
                        f"clusters (expected at least {100 * min_select_share:.0f}%): check the montages "
                        "and mapping.yaml")
    sizes = np.bincount(clusters, minlength=k)
    if n and sizes.max() > max_cluster_share * n:
        problems.append(f"cluster {int(sizes.argmax())} holds {100 * sizes.max() / n:.0f}% of the frames "
                        f"(more than {100 * max_cluster_share:.0f}%): the clusters did not form")
    return problems
