"""How real do synthetic kidney frames look? Speckle and intensity statistics, real vs synthetic, and the
cross-validated AUC of two classifier families that try to tell them apart.

    OMP_NUM_THREADS=1 .venv/bin/python bench/realism.py [--real ../shared/data/real] [--synthetic 60]
        [--seed 1] [--montage docs/synthetic-vs-real-kidneys.png]
    OMP_NUM_THREADS=1 .venv/bin/python bench/realism.py --tune SECONDS [--tune-seed 1] [--tune-frames 40]
        [--tune-family 0|1]
    OMP_NUM_THREADS=1 .venv/bin/python bench/realism.py --windows 4 --seed 0 [--families FILE.json]

Both kinds of frame go through the same code: grayscale, resized to 256 px, the imaged region found
from the pixels (the sector, eroded so that its edge and burned-in text stay out), then per-frame
features inside it. Two families, each scored by stratified 5-fold cross-validation repeated over 5
shuffles: a standardised logistic regression on STATS (33 intensity, speckle and gradient statistics),
and a random forest on HISTOGRAMS (the shares of 16 grey levels, 16 gradient magnitudes and 10 local
binary patterns: the shapes of the distributions rather than their moments). "real vs real" (AHN
frames vs Kidney Stone frames, two scanner families) shows what such features separate even between
real scanners, so judge the statistics too, not only the AUC.

--tune: how render.SCANNER_FAMILIES was set. A random search (3 settings moved at a time, kept when
better) on corpus seed 0 (40 kidney frames) that minimises the cross-validated AUC of a third family,
histogram gradient boosting on the statistics and histograms together, so that neither reported family
is the one tuned against; it prints each better set of families. Check the result with --seed 1.
--tune-family K searches family K alone (every exam drawn from it) against its own real scanner family,
by the per-statistic distributions (statistics_gap). --windows N prints the third family on N disjoint
windows of --synthetic frames: how much it moves with the sample alone, the noise any search fits.
--speckle-only renders the families' speckle over a homogeneous scene: what the scanner settings alone
give, without the anatomy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage, stats
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

SIZE = 256
REAL_FOLDERS = {"ahn": "ahn_kidney/frames/images", "stone": "kidney_stone/images"}
FEATURES = ("mean", "std", "skew", "kurtosis", "p05", "p50", "p95", "dark_frac", "local_cv",
            "corr_axial_px", "corr_lateral_px", "grad_ratio", "hf_ratio", "depth_ratio",
            "p01", "p25", "p75", "p99", "bright_frac", "entropy", "local_cv_p25", "local_cv_p75",
            "snr_bright", "grad_p50", "grad_p90", "grad_sd_ratio", "lap_ratio", "acf1_axial", "acf3_axial",
            "acf1_lateral", "acf3_lateral", "mid_ratio", "lateral_ratio")
HIST_BINS = 16


def imaged_region(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the sector: smoothed pixels above black, largest component, eroded by 10 px."""
    lit = ndimage.uniform_filter(image.astype(np.float32), 9) > 6
    lit = ndimage.binary_fill_holes(ndimage.binary_opening(lit, iterations=3))
    labels, n = ndimage.label(lit)
    if n == 0:
        return lit
    largest = np.argmax(ndimage.sum(lit, labels, range(1, n + 1))) + 1
    return ndimage.binary_erosion(labels == largest, iterations=10)


def correlation_width(patch: np.ndarray, axis: int) -> float:
    """Lag (px) where the normalised autocorrelation of the patch falls to 0.5 along `axis`: speckle size."""
    x = patch - patch.mean()
    spectrum = np.abs(np.fft.rfft2(x)) ** 2
    acf = np.fft.irfft2(spectrum, s=x.shape)
    if acf[0, 0] <= 0:  # a flat patch (all black) has no speckle
        return 0.0
    acf = acf / acf[0, 0]
    line = acf[:, 0] if axis == 0 else acf[0, :]
    below = np.flatnonzero(line[: len(line) // 2] < 0.5)
    if not len(below):
        return float(len(line) // 2)
    i = below[0]  # linear interpolation between the last lag above 0.5 and the first below
    return float(i - 1 + (line[i - 1] - 0.5) / (line[i - 1] - line[i]))


def central_patches(image: np.ndarray, mask: np.ndarray, size: int = 32) -> list[np.ndarray]:
    """Non-overlapping size x size patches lying wholly inside the mask."""
    patches = []
    for r in range(0, image.shape[0] - size + 1, size):
        for c in range(0, image.shape[1] - size + 1, size):
            if mask[r:r + size, c:c + size].all():
                patches.append(image[r:r + size, c:c + size])
    return patches


def frame_features(gray: np.ndarray) -> np.ndarray:
    """FEATURES of one uint8 frame (any size; resized to SIZE)."""
    image = np.asarray(Image.fromarray(gray).resize((SIZE, SIZE), Image.BILINEAR)).astype(np.float32)
    mask = imaged_region(image)
    v = image[mask]
    local_mean = ndimage.uniform_filter(image, 7)
    local_sd = np.sqrt(np.maximum(ndimage.uniform_filter(image ** 2, 7) - local_mean ** 2, 0))
    bright = mask & (local_mean > 20)  # CV is meaningless in anechoic regions
    # speckle size from the detrended image: anatomy (layers, organ outlines) would dominate the ACF otherwise
    detrended = image - ndimage.gaussian_filter(image, 4.0)
    patches = central_patches(detrended, mask) or [detrended[mask.any(1)][:, mask.any(0)][:32, :32]]
    grad = np.hypot(ndimage.sobel(image, 0), ndimage.sobel(image, 1))[mask]
    smooth = ndimage.gaussian_filter(image, 2.0)
    hf = (image - smooth)[mask]
    rows = np.flatnonzero(mask.any(1))
    top, bottom = rows[: len(rows) // 3], rows[-len(rows) // 3:]
    top_mean = image[top][mask[top]].mean()
    bottom_mean = image[bottom][mask[bottom]].mean()
    lap = ndimage.laplace(ndimage.gaussian_filter(image, 1.0))[mask]
    cv = local_sd[bright] / local_mean[bright] if bright.any() else np.zeros(1)
    hist = np.histogram(v, bins=64, range=(0, 256))[0] / len(v)
    cols = np.flatnonzero(mask.any(0))
    third = len(rows) // 3
    mid_mean = image[rows[third:2 * third]][mask[rows[third:2 * third]]].mean()
    left, right = cols[: len(cols) // 3], cols[-len(cols) // 3:]
    side_mean = (image[:, left][mask[:, left]].mean() + image[:, right][mask[:, right]].mean()) / 2
    acf = np.median([acf_at(p, lags=(1, 3)) for p in patches], axis=0)
    scale = v.std() + 1e-6
    stats_row = np.array([
        v.mean(), v.std(), stats.skew(v), stats.kurtosis(v),
        *np.percentile(v, [5, 50, 95]),
        (v < 15).mean(),
        float(np.median(cv)),
        float(np.median([correlation_width(p, 0) for p in patches])),
        float(np.median([correlation_width(p, 1) for p in patches])),
        grad.mean() / scale,
        hf.std() / scale,
        bottom_mean / (top_mean + 1e-6),
        *np.percentile(v, [1, 25, 75, 99]),
        (v > 200).mean(),
        float(-(hist[hist > 0] * np.log(hist[hist > 0])).sum()),
        *np.percentile(cv, [25, 75]),
        float(np.median(local_mean[bright] / (local_sd[bright] + 1e-6))) if bright.any() else 0.0,
        *(np.percentile(grad, [50, 90]) / scale),
        grad.std() / scale,
        lap.std() / scale,
        *acf,
        mid_mean / (top_mean + 1e-6),
        side_mean / (v.mean() + 1e-6),
    ])
    return stats_row


def frame_histograms(gray: np.ndarray) -> np.ndarray:
    """Shares of HIST_BINS grey levels and gradient magnitudes (over the frame's own range) and of 10
    rotation-invariant uniform local binary patterns, inside the imaged region."""
    from skimage.feature import local_binary_pattern

    image = np.asarray(Image.fromarray(gray).resize((SIZE, SIZE), Image.BILINEAR))
    mask = imaged_region(image)
    v = image[mask].astype(np.float32)
    pixels = image.astype(np.float32)
    grad = np.hypot(ndimage.sobel(pixels, 0), ndimage.sobel(pixels, 1))[mask]
    lbp = local_binary_pattern(image, 8, 1, "uniform").astype(np.int64)[mask]
    return np.concatenate([np.histogram(v, HIST_BINS, (0, 256))[0] / len(v),
                           np.histogram(grad, HIST_BINS, (0, 1024))[0] / len(grad),
                           np.bincount(lbp, minlength=10) / len(lbp)])


def acf_at(patch: np.ndarray, lags: tuple[int, ...]) -> list[float]:
    """Normalised autocorrelation of a patch at `lags` px, axially then laterally."""
    x = patch - patch.mean()
    acf = np.fft.irfft2(np.abs(np.fft.rfft2(x)) ** 2, s=x.shape)
    if acf[0, 0] <= 0:
        return [0.0] * (2 * len(lags))
    acf = acf / acf[0, 0]
    return [float(acf[lag, 0]) for lag in lags] + [float(acf[0, lag]) for lag in lags]


def speckle_frames(count: int, seed: int, scanners: str = "families") -> list[np.ndarray]:
    """`count` frames of a homogeneous scene (12 cm deep) through the simulated scanners, no overlay."""
    from usconvirt.synth.bmode import Scene, make_sector, simulate
    from usconvirt.synth.render import acquisition

    rng = np.random.default_rng(seed)
    sector = make_sector(SIZE, depth_cm=12.0)
    return [(simulate(Scene.empty(sector), rng, acquisition(f"homogeneous-{i}", SIZE, rng, scanners)) * 255)
            .astype(np.uint8) for i in range(count)]


def real_frames(root: Path) -> dict[str, list[np.ndarray]]:
    return {name: [np.asarray(Image.open(p).convert("L")) for p in sorted((root / folder).glob("*.png"))]
            for name, folder in REAL_FOLDERS.items()}


def synthetic_frames(count: int, seed: int, scanners: str = "families") -> list[np.ndarray]:
    """The first `count` kidney frames of a planned corpus, rendered at 256 px exactly as the corpus
    renders them (one simulated scanner per exam, overlay included)."""
    from usconvirt.synth.config import SynthConfig
    from usconvirt.synth.corpus import RENDER_STREAM, plan_cohort
    from usconvirt.synth.render import render_frame

    exams = plan_cohort(SynthConfig(exams=max(4, count // 2), seed=seed))
    plans = [(e, i, f) for e in exams for i, f in enumerate(e.frames) if f.organ == "kidney"][:count]
    return [render_frame(np.random.default_rng([seed, RENDER_STREAM, e.index, i]), e.state, f, SIZE,
                         scanners=scanners) for e, i, f in plans]


def cv_auc(a: np.ndarray, b: np.ndarray, seed: int = 0, repeats: int = 5,
           family: str = "logistic") -> tuple[float, float]:
    """Mean and sd over repeats of the stratified 5-fold ROC AUC of a classifier family, a vs b:
    a standardised logistic regression, or a random forest (scikit-learn defaults, 300 trees)."""
    x = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    model = (make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)) if family == "logistic"
             else RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1))
    scores = [cross_val_score(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed + r),
                              scoring="roc_auc").mean() for r in range(repeats)]
    return float(np.mean(scores)), float(np.std(scores))


TUNE_BOUNDS = {"gain_db": (-40, -10), "dynamic_range_db": (45, 110), "psf_scale": (0.4, 1.3),
               "lateral_scale": (0.3, 1.0), "gamma": (0.8, 2.6), "texture_shape": (0.5, 10),
               "smoothing_px": (0, 1.2), "contrast": (1.0, 4.0), "haze": (0, 0.01), "heterogeneity": (0, 0.8),
               "heterogeneity_px": (1, 8), "display_blur_px": (0, 1.2), "edge_enhance": (0, 1.5),
               "reject": (0, 0.2)}


def statistics_gap(real: np.ndarray, synth: np.ndarray) -> float:
    """Mean over the columns (statistics and histogram bins) of the single-feature AUC, real vs synthetic,
    folded above 0.5: how far the per-statistic distributions lie apart, with no classifier fitted."""
    y = np.r_[np.zeros(len(real)), np.ones(len(synth))]
    aucs = [roc_auc_score(y, np.r_[real[:, j], synth[:, j]]) for j in range(real.shape[1])]
    return float(np.mean([max(a, 1 - a) for a in aucs]))


def boosted_auc(real: np.ndarray, synth: np.ndarray) -> float:
    """Cross-validated AUC (5-fold, 2 shuffles) of the third family, the one --tune searches against:
    histogram gradient boosting on statistics and histograms together."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_predict

    x, y = np.r_[real, synth], np.r_[np.zeros(len(real)), np.ones(len(synth))]
    return float(np.mean([roc_auc_score(y, cross_val_predict(
        HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=8, random_state=r), x, y,
        cv=StratifiedKFold(5, shuffle=True, random_state=r), method="predict_proba")[:, 1])
        for r in range(2)]))


def windows(real: np.ndarray, frames: list[np.ndarray], size: int) -> None:
    """The third family's AUC on disjoint windows of `size` synthetic frames (how much it moves with the
    sample alone), and the statistics gap over all of them."""
    synth = np.array([np.r_[frame_features(f), frame_histograms(f)] for f in frames])
    aucs = [boosted_auc(real, synth[i:i + size]) for i in range(0, len(synth) - size + 1, size)]
    print(f"gradient boosting, windows of {size} frames: {' '.join(f'{a:.3f}' for a in aucs)}; "
          f"mean {np.mean(aucs):.3f}; statistics gap over {len(synth)} frames "
          f"{statistics_gap(real, synth):.3f}")


def tune(real: dict[str, np.ndarray], seconds: float, seed: int, frames: int = 40,
         family: int | None = None) -> None:
    """Random search of render.SCANNER_FAMILIES (see the module's docstring); `real`: features of the real
    frames (frame_features then frame_histograms) per REAL_FOLDERS. With `family`, that family alone (every
    exam drawn from it) against its own real scanner family (REAL_FOLDERS in order), by statistics_gap."""
    import time

    from usconvirt.synth import render

    def features(families: list[dict]) -> np.ndarray:
        render.SCANNER_FAMILIES = tuple(families) if family is None else (families[family],) * 2
        return np.array([np.r_[frame_features(f), frame_histograms(f)] for f in synthetic_frames(frames, 0)])

    def gradient_boosting(families: list[dict]) -> float:
        return boosted_auc(np.concatenate(list(real.values())), features(families))

    def family_gap(families: list[dict]) -> float:
        return statistics_gap(list(real.values())[family], features(families))

    score = gradient_boosting if family is None else family_gap
    rng = np.random.default_rng(seed)
    best = [dict(f) for f in render.SCANNER_FAMILIES]
    best_score = score(best)
    print(f"start: {score.__name__} {best_score:.4f}", flush=True)
    deadline = time.time() + seconds
    while time.time() < deadline:
        trial = [dict(f) for f in best]
        for _ in range(3):  # move the centre of a setting's range, keep its width
            moved = trial[int(rng.integers(len(trial)))] if family is None else trial[family]
            key = str(rng.choice(list(TUNE_BOUNDS)))
            (lo, hi), (low, high) = moved[key], TUNE_BOUNDS[key]
            half = (hi - lo) / 2
            step = rng.normal(0, 0.15 * (high - low))
            centre = float(np.clip((lo + hi) / 2 + step, low + half, high - half))
            moved[key] = (round(centre - half, 4), round(centre + half, 4))
        trial_score = score(trial)
        if trial_score < best_score:
            best, best_score = trial, trial_score
            print(f"{trial_score:.4f} {json.dumps(best)}", flush=True)
    render.SCANNER_FAMILIES = tuple(best)


def write_montage(synthetic: list[np.ndarray], real_root: Path, out: Path, per_side: int = 8,
                  thumb: int = 128) -> None:
    """The first synthetic kidney frames of the bench (left) beside real ones (right), captioned."""
    from PIL import ImageDraw

    from usconvirt.io import atomic_path
    from usconvirt.synth.montage import grid, real_kidneys

    left = grid([np.asarray(Image.fromarray(f).resize((thumb, thumb), Image.BILINEAR))
                 for f in synthetic[:per_side]], per_side // 2)
    right = grid(real_kidneys(real_root, per_side, thumb), per_side // 2)
    body = np.concatenate([left, np.full((left.shape[0], 8), 255, np.uint8), right], axis=1)
    canvas = Image.new("L", (body.shape[1], body.shape[0] + 16), 255)
    canvas.paste(Image.fromarray(body), (0, 16))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), "synthetic (usconvirt synth, corpus kidney frames)", fill=0)
    draw.text((left.shape[1] + 12, 2), "real (AHN kidney, Apache-2.0; Kidney Stone, CC BY-SA 4.0, M. Momeni)",
              fill=0)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG", optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared"
                        / "data" / "real")
    parser.add_argument("--synthetic", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--montage", type=Path, help="also write a synthetic | real montage PNG here")
    parser.add_argument("--tune", type=float, metavar="SECONDS", help="search the scanner families instead")
    parser.add_argument("--tune-seed", type=int, default=1)
    parser.add_argument("--tune-family", type=int, help="search this scanner family alone, against its own "
                        "real frames (0: AHN, 1: Kidney Stone), by the per-statistic distributions")
    parser.add_argument("--tune-frames", type=int, default=40,
                        help="synthetic kidney frames of seed 0 per trial")
    parser.add_argument("--families", type=Path, help="a JSON list of scanner families (as --tune prints) "
                        "to use instead of render.SCANNER_FAMILIES")
    parser.add_argument("--windows", type=int, metavar="N", help="instead of the report: the third family on "
                        "N disjoint windows of --synthetic frames of --seed")
    parser.add_argument("--speckle-only", action="store_true",
                        help="compare frames of a homogeneous scene instead of the corpus' kidney frames")
    parser.add_argument("--scanners", choices=("single", "families"), default="families",
                        help="synth.scanners of the frames compared (single: the corpus default)")
    args = parser.parse_args()
    if not args.real.is_dir():
        parser.error(f"{args.real}: no such folder (pass --real ../shared/data/real)")
    real_gray = real_frames(args.real)
    if args.families:
        from usconvirt.synth import render

        render.SCANNER_FAMILIES = tuple({k: tuple(v) for k, v in f.items()}
                                        for f in json.loads(args.families.read_text()))
    if args.windows or args.tune:
        real_both = {k: np.array([np.r_[frame_features(f), frame_histograms(f)] for f in v])
                     for k, v in real_gray.items()}
        if args.tune:
            tune(real_both, args.tune, args.tune_seed, args.tune_frames, args.tune_family)
        else:
            frames = synthetic_frames(args.windows * args.synthetic, args.seed, args.scanners)
            windows(np.concatenate(list(real_both.values())), frames, args.synthetic)
        return
    real = {k: np.array([frame_features(f) for f in v]) for k, v in real_gray.items()}
    real_hist = {k: np.array([frame_histograms(f) for f in v]) for k, v in real_gray.items()}
    make_frames = speckle_frames if args.speckle_only else synthetic_frames
    frames = make_frames(args.synthetic, args.seed, args.scanners)
    synth = np.array([frame_features(f) for f in frames])
    synth_hist = np.array([frame_histograms(f) for f in frames])
    if args.montage:
        write_montage(frames, args.real, args.montage)
    all_real = np.concatenate(list(real.values()))
    all_real_hist = np.concatenate(list(real_hist.values()))
    print(f"{'feature':<16}{'real AHN':>16}{'real Stone':>16}{'real all':>16}{'synthetic':>16}{'AUC':>6}")
    y = np.r_[np.zeros(len(all_real)), np.ones(len(synth))]
    for j, name in enumerate(FEATURES):
        cells = [f"{m[:, j].mean():8.3f}±{m[:, j].std():<6.3f}" for m in (*real.values(), all_real, synth)]
        auc = roc_auc_score(y, np.r_[all_real[:, j], synth[:, j]])
        print(f"{name:<16}" + "".join(f"{c:>16}" for c in cells) + f"{max(auc, 1 - auc):>6.2f}")
    print(f"frames: AHN {len(real['ahn'])}, Stone {len(real['stone'])}, synthetic {len(synth)}")
    pairs = [("synthetic vs real (all)", (all_real, synth), (all_real_hist, synth_hist)),
             ("synthetic vs real AHN", (real["ahn"], synth), (real_hist["ahn"], synth_hist)),
             ("synthetic vs real Stone", (real["stone"], synth), (real_hist["stone"], synth_hist)),
             ("real AHN vs real Stone", (real["ahn"], real["stone"]), (real_hist["ahn"], real_hist["stone"]))]
    print(f"\n{'cross-validated AUC (5-fold x 5)':<30}{'logistic, stats':>18}"
          f"{'random forest, histograms':>28}")
    for name, stat_pair, hist_pair in pairs:
        lr, rf = cv_auc(*stat_pair, args.seed), cv_auc(*hist_pair, args.seed, family="forest")
        print(f"{name:<30}{lr[0]:>11.3f} ± {lr[1]:.3f}{rf[0]:>21.3f} ± {rf[1]:.3f}")


if __name__ == "__main__":
    main()
