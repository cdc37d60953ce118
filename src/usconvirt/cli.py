"""The `usconvirt` command line: one Typer app, each subcommand a thin call into a stage's API.

Stage modules are imported inside the commands so that `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from usconvirt.bundle.cli import export, predict
from usconvirt.data.config import SplitConfig
from usconvirt.errors import EXIT_BAD_INPUT, InputError, Interrupted
from usconvirt.evaluation.config import EvaluationConfig
from usconvirt.logging_setup import configure_logging
from usconvirt.models.config import PRESETS
from usconvirt.run_layout import RunLayout
from usconvirt.text.config import SentenceConfig, TokenizerConfig
from usconvirt.training.config import FinetuneConfig, PretrainConfig

app = typer.Typer(
    name="usconvirt",
    help="Joint image-text learning from abdominal ultrasound exams and French reports (ConVIRT).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("usconvirt")


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    configure_logging(verbose)


def _option(cls: type, name: str, *decls: str) -> Any:
    """The option that sets field `name` of config dataclass `cls`: its help and default are the field's
    (metadata "help"), written once there; left unset (None), the config file's value or the default holds."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    help_text = f"{field.metadata['help']} (default: {field.default})"
    return typer.Option(*decls, help=help_text, show_default=False)


def _config_option(cls: type, section: str) -> Any:
    return typer.Option(help=f"YAML config: {cls.__name__} keys, at the top level or under `{section}:`.")


def _given(cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The fields of `cls` among the command's options that are set (the config file fills the others),
    each checked against its field here, so a bad value is named by its flag as typed (`--organ`), not by
    the config key it sets, nor blamed on the config file it is merged into."""
    from usconvirt.config import checked_value

    hints = typing.get_type_hints(cls)
    return {f.name: checked_value(hints[f.name], options[f.name], _flag(f.name), f.metadata)
            for f in dataclasses.fields(cls) if options.get(f.name) is not None}


# Flags not spelt --field-name after the config field they set; bad values are named by _flag.
_FLAG_NAMES = {"n_bootstrap": "--bootstrap", "semantic_types": "--semantic-type"}


def _flag(name: str) -> str:
    """The flag that sets config field `name`, as a user types it."""
    return _FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


_RESUME = typer.Option(help="Continue from OUT/checkpoints/last.ckpt if present.")


def _settings(**sections):
    """A pipeline config holding the sections a stage subcommand built from its options."""
    from usconvirt.pipeline_config import PipelineConfig

    return PipelineConfig(**sections)


# --- data: validate ---------------------------------------------------------------------------
@app.command()
def validate(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (exams + images tables).")],
    allow_missing_report: Annotated[bool, typer.Option(
        help="Accept exams without a report (a dataset ingested for prediction).")] = False,
) -> None:
    """Check a dataset directory against docs/data-format.md and print its counts."""
    from usconvirt.data import load_dataset

    ds = load_dataset(dataset, allow_missing_reports=allow_missing_report)
    typer.echo(f"{dataset}: {len(ds.exams)} exams, {ds.exams['patient_id'].nunique()} patients, "
               f"{len(ds.images)} images: valid")


# --- data: ingest -----------------------------------------------------------------------------
@app.command()
def ingest(
    dicom_dir: Annotated[Path, typer.Argument(help="Folder of DICOM files (walked recursively).")],
    out: Annotated[Path, typer.Option(help="Dataset directory to write: PNG frames, exams, images.")],
    key: Annotated[str, typer.Option(envvar="USCONVIRT_DEID_KEY",
                                     help="Secret key of the keyed hash that pseudonymises ids (>= 8 chars); "
                                          "prefer the USCONVIRT_DEID_KEY environment variable.")],
    reports: Annotated[Path | None, typer.Option(
        help="Reports table (CSV in any common dialect, JSONL, Parquet): key column + 'report'.")] = None,
    link: Annotated[str, typer.Option(help="DICOM field linking an exam to its report: "
                                           "StudyInstanceUID or AccessionNumber.")] = "StudyInstanceUID",
    report_key_column: Annotated[str | None, typer.Option(
        help="Column of the reports table holding the link key (default: the --link name).")] = None,
    encoding: Annotated[str | None, typer.Option(
        help="Encoding of the reports/labels tables (default: sniffed, UTF-8 else cp1252).")] = None,
    labels: Annotated[Path | None, typer.Option(
        help="Annotations (organ/label/side) keyed by SOPInstanceUID or AccessionNumber + "
             "InstanceNumber, optional 'frame'.")] = None,
    id_map: Annotated[Path | None, typer.Option(
        help="Also write the pseudonym <-> source id table here (outside OUT; keep it safe).")] = None,
    allow_missing_report: Annotated[bool, typer.Option(
        help="Keep studies without a report (empty report), e.g. to predict on them.")] = False,
    shard: Annotated[str | None, typer.Option(
        help="I/N: ingest only shard I (0-based) of N; combine with `usconvirt merge`.")] = None,
    workers: Annotated[int, typer.Option(help="Processes decoding frames (0: one per core).")] = 0,
    resume: Annotated[bool, typer.Option(help="Resume an interrupted ingest of the same export.")] = True,
    strict: Annotated[bool, typer.Option(help="Stop at the first unreadable file, do not skip it.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Ingest a DICOM export into a dataset directory, pseudonymised; exams without a report are skipped."""
    from usconvirt.data.ingest import IngestConfig, ingest_dicom

    config = IngestConfig(link=link, report_key_column=report_key_column, encoding=encoding, labels=labels,
                          id_map=id_map, allow_missing_report=allow_missing_report, shard=shard,
                          workers=workers, resume=resume, strict=strict, overwrite=overwrite)
    s = ingest_dicom(dicom_dir, reports, out, key, config)
    typer.echo(f"{out}: {s.files} files, {s.read} read, {s.skipped} skipped (no image or unreadable); "
               f"{s.frames} frames in {s.exams} exams; "
               f"{s.exams_without_report} exams without report "
               f"{'kept' if allow_missing_report else 'skipped'}, "
               f"{s.reports_without_exam} reports without exam, {s.empty_reports} empty reports"
               + (f"; {s.labelled_frames} frames labelled, {s.labels_without_frame} label rows matched "
                  f"no frame" if labels else "")
               + (f"; resumed {s.resumed_exams} exams" if s.resumed_exams else "")
               + (f" (shard {s.shard})" if s.shard else ""))


@app.command()
def merge(
    shards: Annotated[list[Path], typer.Argument(help="Shard datasets of `usconvirt ingest --shard I/N`.")],
    out: Annotated[Path, typer.Option(help="Dataset directory to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Merge the shards of a sharded ingest into one dataset (the same as one unsharded run)."""
    from usconvirt.data.merge import merge_shards

    s = merge_shards(shards, out, overwrite=overwrite)
    typer.echo(f"{out}: {s.frames} frames in {s.exams} exams from {len(shards)} shards")


# Commands that live beside their stage's code: export and predict (docs/use.md).
app.command("export")(export)
app.command("predict")(predict)


# --- data: split ------------------------------------------------------------------------------
@app.command()
def split(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (exams + images, with images.label).")],
    out: Annotated[Path, typer.Option(help="Split table to write: exam_id, patient_id, part.")],
    labeled_fraction: Annotated[float | None, _option(SplitConfig, "labeled_fraction")] = None,
    train: Annotated[float | None, _option(SplitConfig, "train")] = None,
    val: Annotated[float | None, _option(SplitConfig, "val")] = None,
    test: Annotated[float | None, _option(SplitConfig, "test")] = None,
    seed: Annotated[int | None, _option(SplitConfig, "seed")] = None,
    strict: Annotated[bool, _option(SplitConfig, "strict")] = False,
    file: Annotated[str | None, _option(SplitConfig, "file")] = None,
) -> None:
    """Patient-level split: labelled train/val/test and the pre-training pool; prints the counts table."""
    from rich.console import Console
    from rich.table import Table

    from usconvirt.config import config_from_file
    from usconvirt.data import load_dataset
    from usconvirt.data.split import read_split, split_counts
    from usconvirt.stages import run_split

    config = config_from_file(SplitConfig, None, "split", _given(SplitConfig, locals()))
    # alone, the split is looked at before anything trains: a part without labels stays a warning
    run_split(_settings(split=config, finetune_inits=()), RunLayout(out.parent, dataset=dataset, split=out))
    counts = split_counts(load_dataset(dataset), read_split(out))
    view = Table(title=f"{out}")
    for column in counts.columns:
        view.add_column(column, justify="left" if column == "part" else "right")
    for row in counts.itertuples(index=False):
        view.add_row(*map(str, row))
    Console().print(view)


# --- synth ------------------------------------------------------------------------------------
@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Dataset directory to write (exams, images, frames/, truth).")],
    exams: Annotated[int | None, typer.Option(help="Number of exams, patients having 1 to 3 each "
                                                   "(default: 200).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: the same seed gives the same corpus "
                                                  "(default: 0).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Frame size in pixels, square "
                                                        "(default: 256).")] = None,
    format: Annotated[str | None, typer.Option("--format", help="Frame files: png, or dicom with fake PHI "
                                                                "in the headers (default: png).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes rendering frames; the output does not "
                                                     "depend on it (default: 1).")] = None,
    kidney_abnormal: Annotated[float | None, typer.Option(
        help="Share of exams with an abnormal kidney (default: 0.30).")] = None,
    scanners: Annotated[str | None, typer.Option(
        help="Simulated scanners: single, or families after the real frames (default: single).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML SynthConfig (prevalences...); the options "
                                                     "given on the command line override it.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Generate a synthetic abdominal ultrasound corpus with French reports (docs/synthetic-corpus.md)."""
    from usconvirt.config import config_from_file
    from usconvirt.stages import run_synth
    from usconvirt.synth import Prevalences, SynthConfig

    prevalences = _given(Prevalences, {"kidney_abnormal": kidney_abnormal})
    # not section_config: a pipeline config always regenerates its corpus, this command only on --overwrite
    cfg = config_from_file(SynthConfig, config, "synth", _given(SynthConfig, {
        "exams": exams, "seed": seed, "image_size": image_size, "format": format, "workers": workers,
        "scanners": scanners, "overwrite": overwrite}))
    cfg.prevalences = dataclasses.replace(cfg.prevalences, **prevalences)
    summary = run_synth(_settings(synth=cfg), RunLayout(out, dataset=out), progress=sys.stderr.isatty())
    typer.echo(f"wrote {out}: {summary}")


# --- text: sentences --------------------------------------------------------------------------
@app.command()
def sentences(
    input_table: Annotated[Path, typer.Argument(
        metavar="INPUT", help="Exams table (CSV, JSONL or Parquet) with exam_id and report columns.")],
    out: Annotated[Path, typer.Option(
        help="Output sentences table, .csv or .parquet; the exam summary goes to OUT_summary.<ext>.")],
    organ: Annotated[str | None, typer.Option(
        help="Organ to select (kidney, liver, ...), or 'all' (default: kidney).")] = None,
    backend: Annotated[str | None, typer.Option(
        help="eds (EDS-NLP terminology matching, default) or quickumls (the paper's tool, 'umls' extra).")
    ] = None,
    umls_dir: Annotated[Path | None, typer.Option(
        help="A full UMLS release (MRCONSO.RRF, MRSTY.RRF) instead of the shipped French subset.")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="QuickUMLS/simstring similarity threshold (default: 0.7).")] = None,
    semantic_types: Annotated[list[str] | None, typer.Option(
        _flag("semantic_types"), help="Accepted UMLS semantic type (repeatable); default T023.")] = None,
    config: Annotated[Path | None, _config_option(SentenceConfig, "sentences")] = None,
) -> None:
    """Select organ sentences from French reports (UMLS concept tagging)."""
    from usconvirt.pipeline_config import section_config
    from usconvirt.stages import run_sentences

    cfg = section_config(config, "sentences", _given(SentenceConfig, {
        "organ": organ, "backend": backend, "threshold": threshold,
        "umls_dir": None if umls_dir is None else str(umls_dir), "semantic_types": semantic_types}))
    from usconvirt.text.sentences import read_exams  # spaCy: imported once the flags are known good

    exams = read_exams(input_table)
    layout = RunLayout(out.parent, sentences=out)
    summary = run_sentences(_settings(sentences=cfg), layout, exams=exams)
    typer.echo(f"{out}: {summary}; {layout.sentences_summary}: exam summary")


# --- clustering -------------------------------------------------------------------------------
@app.command()
def cluster(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (exams + images tables).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory, e.g. RUN/cluster; rerun to resume.")],
    clusters: Annotated[int | None, typer.Option("--clusters", help="Clusters K (2-3x the organs).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Training epochs.")] = None,
    image_size: Annotated[int | None, typer.Option("--image-size", help="Frame size in pixels.")] = None,
    arch: Annotated[str | None, typer.Option("--arch", help=f"Encoder: {', '.join(PRESETS)}.")]
    = None,
    select: Annotated[str | None, typer.Option("--select", help="Organ kept in selected.csv (kidney).")]
    = None,
    mapping: Annotated[Path | None, typer.Option(
        "--mapping", help="YAML {cluster: organ} replacing the organ labels (edit OUT/mapping.yaml).")]
    = None,
    split_file: Annotated[Path | None, typer.Option("--split", help="split.csv: cluster its --part only.")]
    = None,
    part: Annotated[str, typer.Option("--part", help="Part of --split to cluster.")] = "pretrain",
    config: Annotated[Path | None, typer.Option("--config", help="YAML ClusterConfig; flags override it.")]
    = None,
    method: Annotated[str | None, typer.Option(
        "--method", help="kmeans (default) or deep (docs/clustering.md).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail when too few frames are selected, one cluster takes most, or the chosen "
                     "candidate scores below the plain pixel baseline on held-out labelled frames.")] = False,
) -> None:
    """Cluster unlabeled frames into organs (k-means or deep clustering); keep kidney frames."""
    from dataclasses import replace

    from usconvirt.clustering.config import ClusterConfig
    from usconvirt.models.config import ImageEncoderConfig
    from usconvirt.pipeline_config import section_config
    from usconvirt.stages import run_cluster

    arch = _given(ImageEncoderConfig, {"arch": arch}).get("arch")
    cfg = section_config(config, "cluster", _given(ClusterConfig, {
        "clusters": clusters, "epochs": epochs, "image_size": image_size, "select": select, "method": method,
        "strict": strict or None}))
    if clusters is not None and cfg.candidates:  # --clusters K: every candidate at K
        cfg = replace(cfg, candidates=tuple(f"{c.partition(':')[0]}:{clusters}" for c in cfg.candidates))
    if arch is not None:
        cfg = replace(cfg, encoder=replace(cfg.encoder, arch=arch))
    settings = _settings(cluster=cfg, cluster_mapping=None if mapping is None else str(mapping))
    summary = run_cluster(settings, RunLayout(out.parent, dataset=dataset, cluster=out, split=split_file),
                          part=part if split_file is not None else None)
    typer.echo(f"{out}: {summary}")


# --- pairing ----------------------------------------------------------------------------------
@app.command()
def pair(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (exams + images tables).")],
    frames: Annotated[Path, typer.Option(help="Selected frames, e.g. RUN/cluster/selected.csv.")],
    sentences: Annotated[Path, typer.Option(help="Organ sentences, e.g. RUN/sentences.parquet.")],
    out: Annotated[Path, typer.Option(help="Pairs table to write, e.g. RUN/pairs.parquet.")],
    organ: Annotated[str, typer.Option(help="Organ whose frames and sentences are paired.")] = "kidney",
    match_laterality: Annotated[bool, typer.Option(
        help="Give a frame whose images.laterality (DICOM tag or burned-in annotation) is left/right only "
             "sentences about its side (or both/unspecified); images.side is never read.")] = False,
) -> None:
    """Pair each selected frame with its own exam's organ sentences."""
    from usconvirt.config import config_from_file
    from usconvirt.pairing import PairConfig
    from usconvirt.stages import run_pair

    config = config_from_file(PairConfig, None, "pairing", _given(PairConfig, {
        "organ": organ, "match_laterality": match_laterality}))
    settings = _settings(pairing=config)
    layout = RunLayout(out.parent, dataset=dataset, selected=frames, sentences=sentences, pairs=out)
    typer.echo(f"{out}: {run_pair(settings, layout, part=None)}")


# --- text: weak labels ------------------------------------------------------------------------
@app.command("weak-labels")
def weak_labels(
    sentences: Annotated[Path, typer.Argument(help="Organ sentences, e.g. RUN/sentences.parquet.")],
    out: Annotated[Path, typer.Option(help="Weak-label table to write, e.g. RUN/weak_labels.parquet.")],
    split: Annotated[Path | None, typer.Option(
        help="Split table: label every exam of its pre-training part (those without a sentence: "
             "unknown); default: the exams of SENTENCES.")] = None,
    organ: Annotated[str, typer.Option(help="Organ whose sentences are read.")] = "kidney",
) -> None:
    """Read each exam's report as abnormal / normal / unknown, per exam and per side; the counts go
    beside OUT, in OUT's name with .json."""
    from usconvirt.config import config_from_file
    from usconvirt.pairing import PairConfig
    from usconvirt.stages import run_weak_labels

    config = config_from_file(PairConfig, None, "pairing", _given(PairConfig, {"organ": organ}))
    layout = RunLayout(out.parent, sentences=sentences, split=split, weak_labels=out)
    summary = run_weak_labels(_settings(pairing=config), layout,
                              part=None if split is None else "pretrain")
    typer.echo(f"{out}: {summary}")


# --- text: tokenizer --------------------------------------------------------------------------
@app.command()
def tokenizer(
    dataset: Annotated[Path, typer.Option(help="Dataset directory whose reports train the tokenizer.")],
    out: Annotated[Path, typer.Option(help="Tokenizer directory to write, e.g. RUN/tokenizer.")],
    split: Annotated[Path | None, typer.Option(
        help="split.csv: train only on the reports of part == pretrain (default: all reports).")] = None,
    vocab_size: Annotated[int | None, _option(TokenizerConfig, "vocab_size")] = None,
    lowercase: Annotated[bool | None, _option(TokenizerConfig, "lowercase")] = None,
    strip_accents: Annotated[bool | None, _option(TokenizerConfig, "strip_accents")] = None,
    min_frequency: Annotated[int | None, _option(TokenizerConfig, "min_frequency")] = None,
    config: Annotated[Path | None, _config_option(TokenizerConfig, "tokenizer")] = None,
    overwrite: Annotated[bool, typer.Option(
        help="Replace OUT if it holds something other than a tokenizer (one is replaced anyway).")] = False,
) -> None:
    """Retrain a WordPiece tokenizer on the reports."""
    from usconvirt.pipeline_config import section_config
    from usconvirt.stages import run_tokenizer

    cfg = section_config(config, "tokenizer", _given(TokenizerConfig, locals()))
    layout = RunLayout(out.parent, dataset=dataset, split=split, tokenizer=out)
    summary = run_tokenizer(_settings(tokenizer=cfg), layout, all_reports=split is None, overwrite=overwrite)
    typer.echo(f"{out}: {summary}")


# --- pretrain ---------------------------------------------------------------------------------
@app.command()
def pretrain(
    pairs: Annotated[Path, typer.Option(help="Pairs table from `usconvirt pair`, e.g. RUN/pairs.parquet.")],
    dataset: Annotated[Path, typer.Option(help="Dataset directory holding the paired frames.")],
    out: Annotated[Path, typer.Option(help="Output directory, e.g. RUN/pretrain (checkpoints live there).")],
    tokenizer: Annotated[Path | None, typer.Option(
        help="Retrained tokenizer directory (default: the text encoder's own tokenizer).")] = None,
    config: Annotated[Path | None, _config_option(PretrainConfig, "pretrain")] = None,
    resume: Annotated[bool, _RESUME] = True,
    epochs: Annotated[int | None, _option(PretrainConfig, "epochs")] = None,
    max_steps: Annotated[int | None, _option(PretrainConfig, "max_steps")] = None,
    batch_size: Annotated[int | None, _option(PretrainConfig, "batch_size")] = None,
    image_size: Annotated[int | None, _option(PretrainConfig, "image_size")] = None,
    weak_labels: Annotated[Path | None, typer.Option(
        help="Weak labels from `usconvirt weak-labels`, read when report_label_weight > 0.")] = None,
    simclr: Annotated[bool, typer.Option(
        "--simclr", help="Image-only SimCLR pre-training (the control) instead of ConVIRT; the frames of "
                         "the pairs, no text.")] = False,
) -> None:
    """ConVIRT pre-training of the image and text encoders (multi-GPU: torchrun or srun with strategy ddp);
    SimCLR's image-only pre-training with --simclr."""
    from lightning.pytorch.utilities import rank_zero_only

    from usconvirt.pipeline_config import section_config
    from usconvirt.stages import run_pretrain

    cfg = section_config(config, "pretrain", _given(PretrainConfig, locals()))
    layout = RunLayout(out.parent, dataset=dataset, pairs=pairs, tokenizer=tokenizer, pretrain=out,
                       weak_labels=weak_labels)
    summary = run_pretrain(_settings(pretrain=cfg, finetune_inits=("convirt",)), layout, resume=resume,
                           tokenizer=tokenizer is not None, only="simclr" if simclr else "convirt")
    if rank_zero_only.rank == 0:  # under torchrun or srun every rank gets here; one line, rank 0's, is enough
        typer.echo(f"{out}: {summary}")


# --- finetune ---------------------------------------------------------------------------------
@app.command()
def finetune(
    dataset: Annotated[Path, typer.Option(help="Dataset directory with normal/abnormal frame labels.")],
    split: Annotated[Path, typer.Option(help="split.csv (exam_id, patient_id, part).")],
    out: Annotated[Path, typer.Option(help="Output directory, e.g. RUN/finetune/convirt.")],
    init: Annotated[str | None, _option(FinetuneConfig, "init")] = None,
    config: Annotated[Path | None, _config_option(FinetuneConfig, "finetune")] = None,
    epochs: Annotated[int | None, _option(FinetuneConfig, "epochs")] = None,
    image_size: Annotated[int | None, _option(FinetuneConfig, "image_size")] = None,
    arch: Annotated[str | None, _option(FinetuneConfig, "arch")] = None,
    loss: Annotated[str | None, _option(FinetuneConfig, "loss")] = None,
    train_fraction: Annotated[float | None, _option(FinetuneConfig, "train_fraction")] = None,
    resume: Annotated[bool, _RESUME] = True,
) -> None:
    """Fine-tune a normal/abnormal kidney classifier with generalized cross-entropy."""
    from usconvirt.models.image_encoder import init_directory
    from usconvirt.pipeline_config import section_config
    from usconvirt.stages import run_finetune

    cfg = section_config(config, "finetune", _given(FinetuneConfig, locals()))
    if cfg.init not in ("random", "imagenet"):
        init_directory(cfg.init)  # a misspelt init stops here, not after the frames are loaded
    layout = RunLayout(out.parent, dataset=dataset, split=split, finetune=out.parent)
    summary = run_finetune(_settings(finetune=cfg), layout, runs={out.name: cfg.init}, resume=resume)
    typer.echo(f"{out}: {summary}")


# --- evaluate ---------------------------------------------------------------------------------
@app.command()
def evaluate(
    run_: Annotated[list[str], typer.Option(
        "--run", help="NAME=PATH: a fine-tuning directory or predictions.csv; repeat for side-by-side "
        "columns.")],
    out: Annotated[Path, typer.Option(help="Output directory, e.g. RUN/evaluation.")],
    n_bootstrap: Annotated[int | None, _option(EvaluationConfig, "n_bootstrap", _flag("n_bootstrap"))] = None,
    seed: Annotated[int | None, _option(EvaluationConfig, "seed")] = None,
    config: Annotated[Path | None, _config_option(EvaluationConfig, "evaluation")] = None,
    dataset: Annotated[Path | None, typer.Option(
        help="Dataset directory whose images.side adds kidney-level figures to the exam-level ones.")] = None,
) -> None:
    """The paper's Table 1, NPV/PPV/sensitivity/specificity/ROC-AUC with patient-bootstrap 95% CIs."""
    from usconvirt.pipeline_config import section_config
    from usconvirt.run_layout import TABLE1_MD
    from usconvirt.stages import run_evaluate

    cfg = section_config(config, "evaluation", _given(EvaluationConfig, locals()))

    runs = {}
    for item in run_:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InputError(f"expected --run NAME=PATH, got '{item}'", field="--run")
        runs[name] = Path(path)
    run_evaluate(_settings(evaluation=cfg), RunLayout(out.parent, dataset=dataset, evaluation=out), runs=runs,
                 sides=dataset is not None)
    typer.echo((out / TABLE1_MD).read_text(encoding="utf-8").rstrip())
    typer.echo(f"{out}: table1.md/.csv/.json, metrics.json/.csv")


# --- report -----------------------------------------------------------------------------------
@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (split.csv, cluster/, pretrain/, ...).")],
    out: Annotated[Path | None, typer.Option(help="HTML file (default RUN_DIR/report.html).")] = None,
    dataset: Annotated[Path | None, typer.Option(
        help="Dataset directory, when it is neither RUN_DIR/dataset nor the run config's 'dataset'.")] = None,
    measure: Annotated[bool, typer.Option(
        help="First compute t-SNE, linear probe, kNN and silhouette (random vs ConVIRT init), and retrieval "
             "and zero-shot when RUN_DIR/pretrain holds a model, into RUN_DIR/evaluation/.")] = False,
    imagenet: Annotated[bool, typer.Option(
        help="With --measure, also compare ImageNet weights (resnet-50 from cache or network).")] = False,
    seed: Annotated[int, typer.Option(help="With --measure: seed of random weights, t-SNE, probe.")] = 0,
) -> None:
    """Write the readable report of a run directory: counts, clustering, pairs, losses, Table 1, figures."""
    from usconvirt.evaluation.config import EvaluationConfig
    from usconvirt.stages import run_report, run_represent

    settings = _settings(evaluation=EvaluationConfig(seed=seed))
    layout = RunLayout(run_dir, dataset=dataset, report=out)
    if measure:
        run_represent(settings, layout, imagenet=imagenet)
    typer.echo(f"report written to {run_report(settings, layout)}")


# --- pipeline: run, demo ----------------------------------------------------------------------
@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Pipeline YAML (see configs/demo.yaml, paper.yaml).")],
    out: Annotated[Path | None, typer.Option(help="Run directory (default: the config's `out`).")] = None,
    from_stage: Annotated[str | None, typer.Option(
        "--from", help="Redo this stage and every later one (synth, split, cluster, sentences, "
                       "pair, weak_labels, tokenizer, pretrain, finetune, evaluate, represent, "
                       "label_efficiency, report).")] = None,
    check: Annotated[bool, typer.Option(
        "--check", help="Only validate the config (every section and key, and that its input paths exist): "
                          "exit 0 when valid, 2 when not.")]
    = False,
) -> None:
    """Run the whole pipeline from a YAML config; stages with unchanged inputs and config are skipped."""
    from usconvirt.pipeline_config import resolve_config

    if check:
        from usconvirt.pipeline_config import validate_run_config

        validate_run_config(resolve_config(config), source=str(config))
        typer.echo(f"{config}: valid")
        return
    from usconvirt import stages

    _finish(*stages.run(resolve_config(config), out=out, from_stage=from_stage, echo=typer.echo,
                        quiet=not _verbose(), source=str(config)))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/demo"),
    exams: Annotated[int | None, typer.Option(
        help="Synthetic exams (default: configs/demo.yaml); 40 or more, else its split leaves the "
             "validation part without labelled frames.")] = None,
    from_stage: Annotated[str | None, typer.Option(
        "--from", help="Redo this stage and every later one.")] = None,
) -> None:
    """Run every stage end to end on a synthetic corpus the project generates itself (CPU, minutes)."""
    from usconvirt import stages
    from usconvirt.pipeline_config import resolve_config

    overrides = {"synth": {"exams": exams}} if exams else None
    _finish(*stages.run(resolve_config(None, overrides), out=out, from_stage=from_stage, echo=typer.echo,
                        quiet=not _verbose(), source="demo config"))


def _verbose() -> bool:
    return logging.getLogger().level <= logging.DEBUG


def _finish(settings, layout) -> None:
    from usconvirt.run_layout import METRICS_JSON
    from usconvirt.stages import headline

    if (layout.evaluation / METRICS_JSON).exists():
        typer.echo(headline(layout))
    if layout.report.exists():
        typer.echo(f"report: {layout.report}")


def _raise_interrupted(signum: int, frame) -> None:
    raise Interrupted(signum)


def main() -> None:
    # SIGTERM (a batch scheduler's kill) and Ctrl-C end a command with 143 / 130, never as a success;
    # during training Lightning calls this handler after its own.
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        app()
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Interrupted as stop:
        typer.echo(f"usconvirt: {stop}", err=True)
        sys.exit(stop.exit_code)
    finally:  # main() called in-process (tests, notebooks) leaves the handlers as it found them
        for signum, handler in previous.items():
            signal.signal(signum, handler)
