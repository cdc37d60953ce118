"""Time the patient-bootstrap metrics for test sets of several sizes; prints a table."""

from __future__ import annotations

import time

import numpy as np

from usconvirt.evaluation.metrics import bootstrap_metrics


def main() -> None:
    print(f"{'frames':>8} {'patients':>9} {'resamples':>10} {'seconds':>8}")
    for frames, resamples in ((603, 1000), (5000, 1000), (20000, 1000)):
        rng = np.random.default_rng(0)
        labels = (rng.random(frames) < 0.3).astype(int)
        scores = np.clip(labels * 0.3 + rng.random(frames) * 0.7, 0, 1)
        patients = rng.integers(0, frames // 3, size=frames)
        start = time.perf_counter()
        preds = (scores >= 0.5).astype(int)
        bootstrap_metrics(labels, preds, scores, patients, n_bootstrap=resamples, seed=0)
        elapsed = time.perf_counter() - start
        print(f"{frames:>8} {len(np.unique(patients)):>9} {resamples:>10} {elapsed:>8.2f}")


if __name__ == "__main__":
    main()
