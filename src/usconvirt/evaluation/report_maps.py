"""Where each fine-tuned classifier looks on the test frames: its most wrong frames and the pointing game.

For every RUN/finetune/NAME, Grad-CAM maps of P(abnormal) (`bundle/heatmaps.py`, the maps `predict`
writes) on test kidney frames, preprocessed as in training:
- a gallery: the false positives with the highest P(abnormal), the false negatives with the lowest,
  and a seeded sample of true positives and negatives, each with its map;
- the pointing game (Zhang et al., "Top-down neural attention by excitation backprop", 2016): the share
  of abnormal test frames whose map peaks inside the kidney, with a patient-bootstrap interval. The
  kidney is where the synthetic corpus drew it: the frame's anatomy is replayed from the corpus seed
  (`synth.render.frame_anatomy`, no echo simulation) and the kidney's section, an ellipse on its major
  axis, is carried through the frame's own crop and resize. That truth scores the maps only; nothing
  trains on it. A peak within POINTING_TOLERANCE of the region counts, as the game's 15 px at 224 px.
  Chance is the share of the frame the tolerant region covers: what a peak placed at random would hit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt

from usconvirt.bundle.heatmaps import ClassActivationMaps
from usconvirt.config import from_dict, load_yaml
from usconvirt.data.dataset import Dataset
from usconvirt.data.images import read_frame
from usconvirt.data.preprocess import preprocess_ultrasound, resize_crop, resize_pad
from usconvirt.evaluation.evaluate import read_predictions
from usconvirt.evaluation.metrics import confidence_interval, patient_resamples
from usconvirt.models.classifier import load_classifier
from usconvirt.run_layout import PREDICTIONS, RunLayout

POINTING_TOLERANCE = 1 / 16  # of the frame's side
SHOWN = 3  # frames of each kind in the gallery


@dataclass
class InitMaps:
    """One fine-tuned classifier's test frames with their Grad-CAM maps (model input size)."""

    name: str
    predictions: pd.DataFrame  # predictions.csv rows of the frames below, in order
    frames: np.ndarray  # (N, S, S) uint8
    maps: np.ndarray  # (N, S, S) float32


def finetune_dirs(layout: RunLayout) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted(layout.finetune.glob(f"*/{PREDICTIONS}"))
            if (p.parent / "model").is_dir()}


def init_maps(directory: Path, dataset: Dataset, image_ids: list[str] | None = None) -> InitMaps:
    """Grad-CAM of the test frames of RUN/finetune/NAME (those named, else all of them)."""
    predictions = read_predictions(directory / PREDICTIONS)
    if image_ids is not None:
        predictions = predictions[predictions["image_id"].isin(set(image_ids))]
    predictions = predictions.reset_index(drop=True)
    size = int(load_yaml(directory / "config.yaml")["image_size"])
    frames = np.stack([preprocess_ultrasound(_raw(dataset, i), size).image for i in predictions["image_id"]]
                      ) if len(predictions) else np.zeros((0, size, size), np.uint8)
    maps = ClassActivationMaps(load_classifier(directory / "model").eval(), size)(frames)
    return InitMaps(directory.name, predictions, frames, maps)


def _raw(dataset: Dataset, image_id: str) -> np.ndarray:
    path = dataset.images.loc[dataset.images["image_id"] == image_id, "path"].iloc[0]
    return read_frame(dataset.image_path(path))


def gallery_rows(predictions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The most wrong frames both ways, then a seeded sample of true ones; column `kind` says which."""
    label, called = predictions["label"].astype(int), predictions["pred"].astype(int)
    ranked = predictions.assign(_p=predictions["prob_abnormal"].astype(float))
    false_pos = ranked[(label == 0) & (called == 1)].nlargest(SHOWN, "_p")
    false_neg = ranked[(label == 1) & (called == 0)].nsmallest(SHOWN, "_p")
    true = predictions[label == called]
    sample = true.sample(min(SHOWN, len(true)), random_state=seed) if len(true) else true
    return pd.concat([false_pos.assign(kind="false positive"), false_neg.assign(kind="false negative"),
                      sample.assign(kind=np.where(sample["label"].astype(int) == 1, "true positive",
                                                  "true negative"))]).drop(columns="_p", errors="ignore")


# --- the pointing game --------------------------------------------------------------------------------
def kidney_regions(dataset: Dataset, image_ids: list[str], size: int) -> dict[str, np.ndarray]:
    """image_id -> the kidney's section in model coordinates (size x size bool), for the frames of a
    synthetic corpus that show a kidney; {} for a dataset the corpus did not write."""
    from usconvirt.synth.config import SynthConfig
    from usconvirt.synth.corpus import RENDER_STREAM, plan_cohort
    from usconvirt.synth.pathology import section_axes
    from usconvirt.synth.render import frame_anatomy

    config_file = dataset.root / "synth_config.yaml"
    if not config_file.is_file():
        return {}
    config = from_dict(SynthConfig, load_yaml(config_file), source=str(config_file))
    wanted, regions = set(image_ids), {}
    for exam in plan_cohort(config):
        for number, plan in enumerate(exam.frames):
            image_id = f"{exam.state.exam_id}-{number:02d}"
            if image_id not in wanted or plan.organ != "kidney":
                continue
            rng = np.random.default_rng([config.seed, RENDER_STREAM, exam.index, number])
            anatomy_rng, scanner_rng, _ = rng.spawn(3)
            scene, axis = frame_anatomy(anatomy_rng, scanner_rng, exam.state, plan, config.image_size)
            if axis is None:  # an empty renal fossa
                continue
            semi_major, semi_minor = section_axes(exam.state.kidneys[plan.side], plan)
            ends = [scene.sector.to_pixel(*point) for point in axis]
            raw = _ellipse(config.image_size, ends, semi_minor / semi_major)
            regions[image_id] = _to_model(_raw(dataset, image_id), raw, size)
    return regions


def _ellipse(size: int, ends: list[tuple[int, int]], ratio: float) -> np.ndarray:
    """Pixels of the ellipse whose major axis joins `ends` ((column, row) each), minor/major = ratio."""
    (c0, r0), (c1, r1) = ends
    centre_c, centre_r = (c0 + c1) / 2, (r0 + r1) / 2
    a = max(math.hypot(c1 - c0, r1 - r0) / 2, 1.0)
    angle = math.atan2(r1 - r0, c1 - c0)
    rows, cols = np.mgrid[:size, :size]
    dc, dr = cols - centre_c, rows - centre_r
    u = dc * math.cos(angle) + dr * math.sin(angle)
    v = -dc * math.sin(angle) + dr * math.cos(angle)
    return (u / a) ** 2 + (v / (a * ratio)) ** 2 <= 1.0


def _to_model(frame: np.ndarray, region: np.ndarray, size: int) -> np.ndarray:
    """A region of the raw frame through the frame's own crop box and resize (preprocess_ultrasound)."""
    prepared = preprocess_ultrasound(frame, size)
    top, left, bottom, right = prepared.crop_box
    crop = region[top:bottom, left:right].astype(np.uint8) * 255
    resized = resize_crop(crop, size) if prepared.organ_crop else resize_pad(crop, size)
    return resized > 127


def pointing_game(maps: InitMaps, regions: dict[str, np.ndarray], *, n_bootstrap: int = 1000,
                  seed: int = 0) -> dict[str, Any]:
    """Share of the abnormal frames with a region whose map peak falls in it (tolerant), its patient
    bootstrap interval, and chance (the tolerant regions' mean area share)."""
    rows = maps.predictions
    keep = [i for i, row in rows.iterrows() if int(row["label"]) == 1 and row["image_id"] in regions]
    if not keep:
        return {"frames": 0}
    size = maps.maps.shape[-1]
    tolerance = POINTING_TOLERANCE * size
    hits, areas = [], []
    for i in keep:
        tolerant = distance_transform_edt(~regions[maps.predictions.at[i, "image_id"]]) <= tolerance
        heat = maps.maps[i]
        peak = np.unravel_index(int(heat.argmax()), heat.shape)
        hits.append(bool(heat.max() > 0) and bool(tolerant[peak]))
        areas.append(float(tolerant.mean()))
    hits_array = np.array(hits, dtype=float)
    weights = patient_resamples(maps.predictions.loc[keep, "patient_id"].to_numpy(), n_bootstrap, seed)
    low, high = confidence_interval(weights @ hits_array / weights.sum(1))
    return {"frames": len(keep), "patients": int(maps.predictions.loc[keep, "patient_id"].nunique()),
            "hit_rate": float(hits_array.mean()), "ci_low": low, "ci_high": high,
            "chance": float(np.mean(areas))}
