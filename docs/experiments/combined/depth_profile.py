"""Mean bottom/top and middle/top brightness (bench/realism.py's depth_ratio and mid_ratio) of each real
scanner family, and of the kidney frames of each simulated family (240 kidney frames of a corpus seed),
with every family's TGC range shifted by each SHIFT (Np/cm): how candidate k's TGC was set (seed 2).

    python docs/experiments/combined/depth_profile.py ../shared/data/real SEED SHIFT [SHIFT ...]
"""
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, "bench")
import realism as R  # noqa: E402
from usconvirt.synth import render  # noqa: E402
from usconvirt.synth.config import SynthConfig  # noqa: E402
from usconvirt.synth.corpus import plan_cohort  # noqa: E402

root, seed, shifts = Path(sys.argv[1]), int(sys.argv[2]), [float(s) for s in sys.argv[3:]]
columns = [R.FEATURES.index("depth_ratio"), R.FEATURES.index("mid_ratio")]
for k, frames in enumerate(R.real_frames(root).values()):
    print(f"real family {k}: depth, mid", np.mean([R.frame_features(g)[columns] for g in frames], 0).round(3))
exams = plan_cohort(SynthConfig(exams=120, seed=seed))
kidney_exams = [e for e in exams for f in e.frames if f.organ == "kidney"][:240]
family = np.array([int(np.random.default_rng(zlib.crc32(e.state.exam_id.encode()) + 1).integers(2))
                   for e in kidney_exams])
base = [dict(f) for f in render.SCANNER_FAMILIES]
for shift in shifts:
    render.SCANNER_FAMILIES = tuple(
        dict(f, tgc_np_per_cm=(f["tgc_np_per_cm"][0] + shift, f["tgc_np_per_cm"][1] + shift)) for f in base)
    features = np.array([R.frame_features(g)[columns] for g in R.synthetic_frames(240, seed)])
    means = [features[family == k].mean(0).round(3).tolist() for k in (0, 1)]
    print(f"shift {shift:+.3f}: family 0, 1:", means)
