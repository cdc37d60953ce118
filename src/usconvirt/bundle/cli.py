"""The `usconvirt export` and `usconvirt predict` commands (registered in usconvirt/cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def _quiet_transformers() -> None:
    """No per-model 'Loading weights' bars between the command's own lines."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def export(
    run_dir: Annotated[Path, typer.Argument(
        metavar="RUN", help="Run directory (finetune/, cluster/, split.csv).")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")],
    init: Annotated[str | None, typer.Option(
        help="Fine-tuning run to export (RUN/finetune/NAME); default: the best validation macro-F1.")] = None,
    criterion: Annotated[str, typer.Option(
        help="How the exam threshold is chosen on validation: macro_f1 or youden.")] = "macro_f1",
    target_sensitivity: Annotated[float | None, typer.Option(
        help="Choose instead the highest threshold reaching this validation sensitivity, e.g. 0.9.")] = None,
    onnx: Annotated[bool, typer.Option(
        help="Also write classifier.onnx (and organ_model.onnx for a deep organ model).")] = True,
    bootstrap: Annotated[int, typer.Option(help="Patient bootstrap resamples for the model card.")] = 1000,
    with_text: Annotated[bool, typer.Option(
        help="Also ship the ConVIRT text encoder, tokenizer and projections (predict --prompt).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Write a self-contained model bundle (weights, preprocessing, decision rule, ONNX, model card)."""
    from usconvirt.bundle.export import ExportConfig, export_bundle

    _quiet_transformers()
    chosen = "sensitivity" if target_sensitivity is not None else criterion
    config = ExportConfig(init=init, criterion=chosen, target_sensitivity=target_sensitivity, onnx=onnx,
                          n_bootstrap=bootstrap, overwrite=overwrite, with_text=with_text)
    result = export_bundle(run_dir, out, config)
    rule = result["rule"]
    typer.echo(f"{out}: {result['init']} classifier; exam rule {rule['aggregation']} >= "
               f"{rule['threshold']:.4f} ({rule['criterion']}, {rule['val_exams']} validation exams)")
    for name, diff in result["onnx_max_abs_diff"].items():
        typer.echo(f"{name}.onnx: max |ONNX - PyTorch| = {diff:.2e} on a batch of validation frames")


def predict(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory from `usconvirt export`.")],
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT...", help="DICOM folders (any tree), dataset directories, or PNG/JPG files.")],
    out: Annotated[Path, typer.Option(help="Output directory: frames.csv, exams.csv, summary.json.")],
    key: Annotated[str | None, typer.Option(
        envvar="USCONVIRT_DEID_KEY", help="Pseudonymisation key, the one ingest uses (prefer the "
                                          "USCONVIRT_DEID_KEY environment variable).")] = None,
    id_map: Annotated[Path | None, typer.Option(
        help="Also write pseudonym <-> source ids (study, accession and SOP UIDs, paths) here "
             "(outside OUT).")] = None,
    organ_from: Annotated[str, typer.Option(
        help="model: the bundle's organ model finds kidney frames; dataset: the images table's organ.")]
    = "model",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int | None, typer.Option(
        help="Frames per model call (default: 256 on a GPU, 64 on the CPU).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes decoding and preprocessing frames (default: one per CPU, at most 8).")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first unreadable file, do not skip it.")] = False,
    maps: Annotated[bool, typer.Option(
        help="Grad-CAM heat maps of every kidney frame: OUT/maps/gradcam/ID.png and ID.npy.")] = True,
    prompt: Annotated[list[str] | None, typer.Option(
        help="A French prompt (repeatable): a similarity map and a zero-shot score per kidney frame "
             "(a bundle exported --with-text).")] = None,
    review: Annotated[bool, typer.Option(
        help="Write OUT/review/index.html, a self-contained page of the exams and their frames.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Predict normal/abnormal kidneys for new exams: OUT/frames.csv (per frame), OUT/exams.csv (per exam)."""
    from usconvirt.bundle.load import load_bundle
    from usconvirt.bundle.predict import PredictConfig, default_workers, predict_input

    _quiet_transformers()
    config = PredictConfig(key=key, strict=strict, organ_from=organ_from, device=device,
                           batch_size=batch_size, workers=workers or default_workers(), id_map=id_map,
                           overwrite=overwrite, progress=sys.stderr.isatty(), maps=maps,
                           prompts=tuple(prompt or ()), review=review)
    summary = predict_input(load_bundle(bundle), inputs, out, config)
    typer.echo(summary.line(out))
