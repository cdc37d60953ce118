"""Pre-training diagnostics a user can act on: mean loss per epoch against chance, held-out retrieval.

An InfoNCE loss over a batch of B starts at about chance, ln(B) (uniform similarities), so the ratio of
the last epoch's mean loss to ln(B) says how much the model learned: above `WARN_RATIO` (0.9) it learned
little, and the stage says so in one line. Single steps are noisy (a batch's negatives change every
step), hence epoch means rather than the final step's loss.

Files (docs/pretraining.md): `epoch_loss.csv` (epoch, mean_loss, chance) and `diagnostics.json`
(last_epoch_mean_loss, chance, ratio, warning, heldout_retrieval {r@1, r@5, r@10, n, candidates} or null).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from usconvirt.io import write_json, write_table
from usconvirt.run_layout import DIAGNOSTICS, EPOCH_LOSS, LOSS

log = logging.getLogger(__name__)

WARN_RATIO = 0.9


def split_heldout_exams(pairs: pd.DataFrame, fraction: float, seed: int,
                        min_exams: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training pairs, held-out pairs): whole exams drawn with `seed`; nothing held out below `min_exams`."""
    if "exam_id" not in pairs.columns or fraction <= 0.0:
        return pairs.reset_index(drop=True), pairs.iloc[:0]
    exams = pairs["exam_id"].astype(str).drop_duplicates().to_numpy()
    n_held = int(round(fraction * len(exams)))
    if n_held < min_exams or n_held >= len(exams):
        return pairs.reset_index(drop=True), pairs.iloc[:0]
    held = set(np.random.default_rng(seed).choice(exams, size=n_held, replace=False).tolist())
    mask = pairs["exam_id"].astype(str).isin(held)
    return pairs[~mask].reset_index(drop=True), pairs[mask].reset_index(drop=True)


def epoch_loss_table(losses: pd.DataFrame, chance: float) -> pd.DataFrame:
    """Mean loss per epoch from loss.csv's (step, epoch, loss) rows, with chance beside it."""
    table = losses.groupby("epoch", as_index=False)["loss"].mean().rename(columns={"loss": "mean_loss"})
    table["chance"] = chance
    return table[["epoch", "mean_loss", "chance"]]


def loss_diagnostics(losses: pd.DataFrame, chance: float, retrieval: dict[str, Any] | None = None,
                     epochs: pd.DataFrame | None = None) -> dict[str, Any]:
    """The diagnostics.json content; one warning line when the last epoch is above WARN_RATIO x chance."""
    epochs = epoch_loss_table(losses, chance) if epochs is None else epochs
    last = float(epochs["mean_loss"].iloc[-1]) if len(epochs) else math.nan
    ratio = last / chance if chance > 0 else math.nan
    warning = bool(np.isfinite(ratio) and ratio > WARN_RATIO)
    if warning:
        log.warning("pre-training learned little: last-epoch mean loss %.3f is %.0f%% of chance "
                    "(%.3f); train longer, raise the learning rate or check the pairs",
                    last, 100 * ratio, chance)
    return {"last_epoch_mean_loss": last, "chance": chance, "ratio": ratio, "warning": warning,
            "heldout_retrieval": retrieval}


def loss_summary(losses: pd.DataFrame, chance: float) -> dict[str, float]:
    """The first and final step's loss and chance, for a pre-training's returned summary."""
    return {"first_loss": float(losses["loss"].iloc[0]) if len(losses) else math.nan,
            "final_loss": float(losses["loss"].iloc[-1]) if len(losses) else math.nan,
            "chance_loss": chance}


def record_diagnostics(out_dir: str | Path, losses: pd.DataFrame, chance: float,
                       retrieval: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                       ) -> dict[str, float]:
    """Write loss.csv, epoch_loss.csv and diagnostics.json (with `extra`); returns the last epoch's mean
    loss and ratio."""
    out_dir = Path(out_dir)
    epochs = epoch_loss_table(losses, chance)
    diagnostics = {**loss_diagnostics(losses, chance, retrieval, epochs), **(extra or {})}
    write_table(losses, out_dir / LOSS)
    write_table(epochs, out_dir / EPOCH_LOSS)
    write_json(diagnostics, out_dir / DIAGNOSTICS)
    return {"last_epoch_mean_loss": diagnostics["last_epoch_mean_loss"], "ratio": diagnostics["ratio"]}
