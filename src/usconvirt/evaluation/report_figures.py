"""The run report's own figures (other figures are PNG files the stages wrote): pre-training losses,
the pointing game."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.figure import Figure


def _finished(fig: Figure, ax, xlabel: str, ylabel: str, title: str) -> bytes:
    """Label, grid and legend an axes the same way in every report figure; the figure as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def loss_curve_png(curves: dict[str, pd.DataFrame]) -> bytes:
    """PNG of each run's per-step loss against the step (or row order), with a smoothed trend."""
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.subplots()
    for name, curve in curves.items():
        x = curve["step"] if "step" in curve else pd.Series(range(len(curve)))
        for column in [c for c in curve.columns if "loss" in c]:
            y = curve[column]
            label = name if column == "loss" else f"{name} {column}"
            (raw,) = ax.plot(x, y, alpha=0.3, linewidth=1)
            window = max(1, len(y) // 20)
            ax.plot(x, y.rolling(window, min_periods=1).mean(), linewidth=2, color=raw.get_color(),
                    label=f"{label} (mean of {window})" if window > 1 else label)
    return _finished(fig, ax, "step", "contrastive loss", "Pre-training loss per step")


def epoch_ratio_png(epochs: dict[str, pd.DataFrame]) -> bytes:
    """PNG of each run's mean loss per epoch divided by its chance, with the 0.9 warning line."""
    fig = Figure(figsize=(7.0, 3.2))
    ax = fig.subplots()
    for name, frame in epochs.items():
        if {"epoch", "mean_loss", "chance"} <= set(frame.columns) and len(frame):
            ax.plot(frame["epoch"], frame["mean_loss"] / frame["chance"], marker=".", label=name)
    ax.axhline(1.0, color="grey", linewidth=1, label="chance")
    ax.axhline(0.9, color="#b35806", linestyle="--", linewidth=1, label="warning (0.9 x chance)")
    return _finished(fig, ax, "epoch", "mean loss / chance",
                     "Mean pre-training loss per epoch, relative to chance")


def pointing_game_png(results: dict[str, dict]) -> bytes:
    """PNG of each init's pointing-game hit rate with its interval, against chance (dashed)."""
    names = [name for name, r in results.items() if r.get("frames")]
    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot()
    rates = [results[n]["hit_rate"] for n in names]
    errors = [[r - results[n]["ci_low"] for n, r in zip(names, rates, strict=True)],
              [results[n]["ci_high"] - r for n, r in zip(names, rates, strict=True)]]
    ax.bar(names, rates, yerr=errors, capsize=4, color="#4c72b0", label="map peak in the kidney")
    for i, n in enumerate(names):
        ax.hlines(results[n]["chance"], i - 0.4, i + 0.4, colors="k", linestyles="--",
                  label="chance (region's area)" if i == 0 else None)
    ax.set_ylim(0, 1)
    return _finished(fig, ax, "initialisation", "share of abnormal test frames",
                     "Pointing game (95% patient-bootstrap interval)")
