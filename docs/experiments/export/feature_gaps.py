"""Single-feature AUC (folded above 0.5), real frames vs 240 kidney frames of corpus seed 0, for every
statistic and histogram bin of bench/realism.py, the 25 largest first; optionally with a FAMILY_OUTPUT JSON.

    python docs/experiments/export/feature_gaps.py ../shared/data/real \
        [docs/experiments/export/grey-map-seed2.json]   # the JSON only at commit 7000a7f
"""
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, "bench")
import realism as R  # noqa: E402

real_gray = R.real_frames(Path(sys.argv[1]))
if len(sys.argv) > 2:
    from usconvirt.synth import render

    render.FAMILY_OUTPUT = tuple(json.loads(Path(sys.argv[2]).read_text()))
real = np.array([np.r_[R.frame_features(f), R.frame_histograms(f)] for v in real_gray.values() for f in v])
synth = np.array([np.r_[R.frame_features(f), R.frame_histograms(f)] for f in R.synthetic_frames(240, 0)])
names = [*R.FEATURES, *(f"grey{i}" for i in range(16)), *(f"grad{i}" for i in range(16)),
         *(f"lbp{i}" for i in range(10))]
y = np.r_[np.zeros(len(real)), np.ones(len(synth))]
rows = []
for j, name in enumerate(names):
    auc = roc_auc_score(y, np.r_[real[:, j], synth[:, j]])
    rows.append((max(auc, 1 - auc), name, real[:, j].mean(), synth[:, j].mean()))
for auc, name, r, s in sorted(rows, reverse=True)[:25]:
    print(f"{name:<16}{auc:.2f}  real {r:.4f}  synthetic {s:.4f}")
