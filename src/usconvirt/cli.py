"""The `usconvirt` command line: one Typer app, each subcommand a thin call into a stage's API.

Stage modules are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from usconvirt.errors import EXIT_BAD_INPUT, InputError
from usconvirt.logging_setup import configure_logging

app = typer.Typer(
    name="usconvirt",
    help="Joint image-text learning from abdominal ultrasound exams and French reports (ConVIRT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("usconvirt")


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False) -> None:
    configure_logging(verbose)


def _not_yet(stage: str) -> None:
    typer.echo(f"usconvirt {stage}: not implemented yet", err=True)
    raise typer.Exit(1)


# --- data: validate ---------------------------------------------------------------------------
@app.command()
def validate(dataset: Annotated[Path, typer.Argument(help="Dataset directory (exams + images tables).")]) -> None:
    """Check a dataset directory against docs/data-format.md and print its counts."""
    from usconvirt.data import load_dataset

    ds = load_dataset(dataset)
    typer.echo(f"{dataset}: {len(ds.exams)} exams, {ds.exams['patient_id'].nunique()} patients, "
               f"{len(ds.images)} images: valid")


# --- data: ingest -----------------------------------------------------------------------------
@app.command()
def ingest() -> None:
    """Ingest a DICOM export into a dataset directory."""
    _not_yet("ingest")


# --- data: split ------------------------------------------------------------------------------
@app.command()
def split() -> None:
    """Patient-level split: labeled train/val/test and the pre-training pool."""
    _not_yet("split")


# --- synth ------------------------------------------------------------------------------------
@app.command()
def synth() -> None:
    """Generate a synthetic abdominal ultrasound corpus with French reports."""
    _not_yet("synth")


# --- text: sentences --------------------------------------------------------------------------
@app.command()
def sentences() -> None:
    """Select organ sentences from French reports (UMLS concept tagging)."""
    _not_yet("sentences")


# --- clustering -------------------------------------------------------------------------------
@app.command()
def cluster() -> None:
    """Deep clustering of unlabeled frames into organs; keep kidney frames."""
    _not_yet("cluster")


# --- pairing ----------------------------------------------------------------------------------
@app.command()
def pair() -> None:
    """Pair each selected frame with its own exam's organ sentences."""
    _not_yet("pair")


# --- text: tokenizer --------------------------------------------------------------------------
@app.command()
def tokenizer() -> None:
    """Retrain a WordPiece tokenizer on the reports."""
    _not_yet("tokenizer")


# --- pretrain ---------------------------------------------------------------------------------
@app.command()
def pretrain() -> None:
    """ConVIRT pre-training of the image and text encoders."""
    _not_yet("pretrain")


# --- finetune ---------------------------------------------------------------------------------
@app.command()
def finetune() -> None:
    """Fine-tune a normal/abnormal classifier with generalized cross-entropy."""
    _not_yet("finetune")


# --- evaluate ---------------------------------------------------------------------------------
@app.command()
def evaluate() -> None:
    """The paper's Table 1 and more on the test set."""
    _not_yet("evaluate")


# --- report -----------------------------------------------------------------------------------
@app.command()
def report() -> None:
    """Write the readable report of a run directory."""
    _not_yet("report")


# --- pipeline: run, demo ----------------------------------------------------------------------
@app.command()
def run() -> None:
    """Run the whole pipeline from a YAML config, skipping stages already done."""
    _not_yet("run")


@app.command()
def demo() -> None:
    """Run every stage end to end on a synthetic corpus."""
    _not_yet("demo")


def main() -> None:
    try:
        app()
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
