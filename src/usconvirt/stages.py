"""The pipeline's stages, in order: each one the only door to its step, `run(config, layout) -> summary`.

`usconvirt run` calls every stage with the validated `PipelineConfig` and the run directory's layout;
each stage subcommand (`usconvirt split`, `usconvirt finetune`, ...) builds the same two objects from
its options and calls the same function; the benches do too. Every stage reads earlier stages' files
and writes its own, so any stage can be rerun alone (see pipeline.py for the manifest that decides
what reruns). Keyword options after `layout` are the single-run forms the subcommands offer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from usconvirt.errors import InputError
from usconvirt.io import read_table, write_json, write_table
from usconvirt.pipeline import Stage, fingerprint, run_decisions, run_pipeline
from usconvirt.pipeline_config import PipelineConfig
from usconvirt.run_layout import (
    CHECKPOINTS,
    CONTROL_DIRS,
    LABEL_EFFICIENCY_TABLE,
    LOSS,
    METRICS_JSON,
    PREDICTIONS,
    TABLE1_MD,
    TSNE_PLOT,
    RunLayout,
)

log = logging.getLogger(__name__)


def _dataset(layout: RunLayout, **options):
    from usconvirt.data import load_dataset

    return load_dataset(layout.dataset_dir, **options)


def _exams_in(layout: RunLayout, part: str) -> set[str]:
    from usconvirt.data.split import exams_in, read_split

    return exams_in(read_split(layout.split), part)


# --- synth ------------------------------------------------------------------------------------------
def run_synth(config: PipelineConfig, layout: RunLayout, *, progress: bool = False) -> str:
    from usconvirt.synth.corpus import generate_corpus

    generate_corpus(layout.dataset_dir, config.synth, progress=progress)
    ds = _dataset(layout)
    return f"{len(ds.exams)} exams, {ds.exams['patient_id'].nunique()} patients, {len(ds.images)} frames"


# --- split ------------------------------------------------------------------------------------------
def run_split(config: PipelineConfig, layout: RunLayout) -> str:
    from usconvirt.data.split import split_counts, split_dataset, split_summary

    ds = _dataset(layout)
    split = split_dataset(ds, config.split)
    counts = split_counts(ds, split)
    labelled = counts.set_index("part")[["normal", "abnormal"]].sum(axis=1)
    empty = [part for part in ("train", "val") if not labelled[part]]
    if empty and config.finetune_inits:  # else fine-tuning would stop on it only after pre-training
        raise InputError(f"split part '{empty[0]}' holds no frame labelled normal or abnormal, which "
                         "fine-tuning needs: label more patients, or change the split's shares or seed "
                         "(usconvirt demo: more --exams)",
                         file=ds.root, field=f"split.{empty[0]}")
    write_table(split, layout.split)
    return split_summary(counts)


# --- cluster ----------------------------------------------------------------------------------------
def run_cluster(config: PipelineConfig, layout: RunLayout, *, part: str | None = "pretrain") -> str:
    """Cluster the frames of the split's `part` (all frames when `part` is None) and keep the kidney's."""
    from usconvirt.clustering.cli import split_frames
    from usconvirt.clustering.run import run_clustering
    from usconvirt.data.split import read_split

    ds = _dataset(layout)
    ids = train = None
    if part is not None:
        ids, train = split_frames(ds, read_split(layout.split, ds), part, source=str(layout.split))
    mapping = Path(config.cluster_mapping) if config.cluster_mapping else None
    metrics = run_clustering(ds, layout.cluster, config.cluster, image_ids=ids, mapping_file=mapping,
                             mapping_ids=train)
    kept = len(read_table(layout.selected))
    scores = (f", kidney F1 {metrics['kidney_f1']:.3f}, weighted F1 {metrics['weighted_f1']:.3f}"
              if metrics.get("kidney_f1") is not None else "")
    return f"frames {metrics['frames']}, {kept} kept as {config.cluster.select}{scores}"


# --- sentences --------------------------------------------------------------------------------------
def run_sentences(config: PipelineConfig, layout: RunLayout, *, exams: pd.DataFrame | None = None) -> str:
    """Organ sentences of the dataset's reports (or of the `exams` table given)."""
    from usconvirt.text.sentences import distinct_share, write_sentences

    exams = _dataset(layout).exams if exams is None else exams
    sentences = write_sentences(exams, layout.sentences, config.sentences)
    return (f"{len(sentences)} {config.sentences.organ} sentences in "
            f"{sentences['exam_id'].nunique()} of {len(exams)} reports; distinct share "
            + ", ".join(f"{o} {v:.2f}" for o, v in distinct_share(sentences).items()))


# --- pair -------------------------------------------------------------------------------------------
def run_pair(config: PipelineConfig, layout: RunLayout, *, part: str | None = "pretrain") -> str:
    """Pair the selected frames with their exam's sentences, those of the split's `part` (None: all)."""
    from usconvirt.pairing import build_pairs
    from usconvirt.text.sentence_table import read_sentences

    frames = read_table(layout.selected)
    sentences = read_sentences(layout.sentences)
    if part is not None:
        sentences = sentences[sentences["exam_id"].isin(_exams_in(layout, part))]
    pairs, accounting = build_pairs(_dataset(layout), frames, sentences, config.pairing,
                                    frames_source=str(layout.selected),
                                    sentences_source=str(layout.sentences))
    write_table(pairs, layout.pairs)
    write_json(accounting, layout.pairs_accounting)
    return (f"{accounting['frames_kept']} frames kept, {accounting['frames_without_text']} frames without "
            f"text, {accounting['exams']} exams (of {accounting['frames_selected']} selected frames)")


# --- weak labels ------------------------------------------------------------------------------------
def run_weak_labels(config: PipelineConfig, layout: RunLayout, *, part: str | None = "pretrain") -> str:
    """The reports read as labels: every exam of the split's `part` (None: those of the sentence table)."""
    from usconvirt.text.sentence_table import read_sentences
    from usconvirt.weak_labels import weak_labels

    exam_ids = None if part is None else sorted(_exams_in(layout, part))
    table, counts = weak_labels(read_sentences(layout.sentences), exam_ids, organ=config.pairing.organ,
                                source=str(layout.sentences))
    write_table(table, layout.weak_labels)
    write_json(counts, layout.weak_labels_accounting)
    return (f"{counts['exams']} exams: {counts['exam_abnormal']} abnormal, {counts['exam_normal']} normal, "
            f"{counts['exam_unknown']} unknown")


# --- tokenizer --------------------------------------------------------------------------------------
def run_tokenizer(config: PipelineConfig, layout: RunLayout, *, all_reports: bool = False,
                  overwrite: bool = False) -> str:
    """A WordPiece tokenizer retrained on the pre-training exams' reports (every report: `all_reports`);
    `overwrite`: replace whatever the tokenizer folder holds, not only an earlier tokenizer."""
    from usconvirt.text.tokenizer import pretraining_reports, train_tokenizer

    reports = pretraining_reports(_dataset(layout, check_files=False), None if all_reports else layout.split)
    tokenizer = train_tokenizer(reports, layout.tokenizer, config.tokenizer, overwrite=overwrite)
    return f"WordPiece tokenizer of {len(tokenizer)} tokens trained on {len(reports)} reports"


# --- pretrain ---------------------------------------------------------------------------------------
def pretrain_summary(name: str, summary: Mapping[str, Any]) -> str:
    """One pre-training's line, the same for `usconvirt run` and `usconvirt pretrain`."""
    line = (f"{name} {summary['steps']} steps on {summary['pairs']} pairs, "
            f"loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}")
    if "ratio" in summary:  # written by the main process only
        line += (f", last-epoch loss {summary['last_epoch_mean_loss']:.3f} "
                 f"= {summary['ratio']:.2f} x chance")
    if summary.get("negatives"):
        line += (f", {100 * summary['equivalent_negative_share']:.1f}% of in-batch negatives were "
                 "equivalent texts")
    return line


def run_pretrain(config: PipelineConfig, layout: RunLayout, *, resume: bool = True,
                 tokenizer: bool = True, only: str | None = None) -> str:
    """ConVIRT, and each control that finetune_inits names, pre-trained on the pairs.

    `tokenizer` False: the text encoder's own tokenizer rather than the retrained one. `only` (convirt,
    or a name of CONTROL_DIRS): that one pre-training alone, into `layout.pretrain` (a subcommand's --out).
    """
    from usconvirt.pairing import load_pairs
    from usconvirt.training.pretrain import pretrain
    from usconvirt.training.report_labels import pretrain_report_labels
    from usconvirt.training.simclr import pretrain_simclr
    from usconvirt.weak_labels import load_weak_labels

    ds = _dataset(layout)
    pairs = load_pairs(layout.pairs, ds)
    tokenizer_dir = layout.tokenizer if tokenizer else None
    wanted = ["convirt", *(name for name in CONTROL_DIRS if name in config.finetune_inits)]
    if only is not None:
        wanted = [only]
    labels = (load_weak_labels(layout.weak_labels)
              if "report_labels" in wanted or config.pretrain.report_label_weight > 0 else None)
    kind = config.pretrain.equivalent_texts
    if kind == "none":
        # Soft targets spread over byte-identical texts give exactly ConVIRT's loss (their embeddings are
        # equal), so the variant groups texts by what their sentences find, which needs the sentence table.
        kind = "findings" if layout.sentences.exists() else "identical"
        if kind == "identical" and "convirt-equiv" in wanted:
            log.warning("convirt-equiv: no sentence table at %s, so texts are grouped by identical wording, "
                        "which trains as plain ConVIRT", layout.sentences)
    equivalent = replace(config.pretrain, equivalent_texts=kind)
    findings = None
    if equivalent.equivalent_texts == "findings" and set(wanted) & {"convirt", "shuffled", "convirt-equiv"}:
        from usconvirt.text.sentence_table import read_sentences
        from usconvirt.training.equivalent_texts import sentence_findings

        findings = sentence_findings(read_sentences(layout.sentences))
    runs = {"convirt": lambda out: pretrain(ds, pairs, tokenizer_dir, out, config.pretrain,
                                            weak_labels=labels, resume=resume, findings=findings),
            "shuffled": lambda out: pretrain(ds, pairs, tokenizer_dir, out,
                                             replace(config.pretrain, shuffle_texts=True),
                                             weak_labels=labels, resume=resume, findings=findings),
            "simclr": lambda out: pretrain_simclr(ds, pairs, out, config.pretrain, resume=resume),
            "report_labels": lambda out: pretrain_report_labels(ds, pairs, labels, out, config.pretrain,
                                                                resume=resume),
            # ConVIRT with equivalent texts as shared positives: the config's kind, else equal findings
            "convirt-equiv": lambda out: pretrain(ds, pairs, tokenizer_dir, out, equivalent,
                                                  weak_labels=labels, resume=resume, findings=findings)}
    if only is not None:
        return pretrain_summary(only, runs[only](layout.pretrain))
    return "; ".join(pretrain_summary(name, runs[name](layout.pretraining(name))) for name in wanted)


def _pretrain_outputs(config: PipelineConfig, layout: RunLayout) -> list[Path]:
    """ConVIRT's files and each control's encoder that finetune_inits asks for (a new one reruns it)."""
    controls = [name for name in config.finetune_inits if name in CONTROL_DIRS]
    return [layout.pretrain / "image_encoder", layout.pretrain / LOSS,
            *(layout.pretraining(name) / "image_encoder" for name in controls)]


# --- finetune ---------------------------------------------------------------------------------------
def imagenet_cached() -> bool:
    """Whether microsoft/resnet-50's weights are in the local Hugging Face cache; never downloads."""
    from huggingface_hub import try_to_load_from_cache

    from usconvirt.models.image_encoder import IMAGENET_WEIGHTS

    if not isinstance(try_to_load_from_cache(IMAGENET_WEIGHTS, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(IMAGENET_WEIGHTS, name), str)
               for name in ("model.safetensors", "pytorch_model.bin"))


def machine_decisions(config: PipelineConfig) -> dict[str, Any]:
    """Choices that depend on the machine, made once per run from the config and local files only."""
    return {"imagenet": "imagenet" in config.finetune_inits and imagenet_cached()}


def finetune_runs(config: PipelineConfig, layout: RunLayout) -> dict[str, str]:
    """Run name -> init, for the inits the config asks for (imagenet only where its weights are cached)."""
    inits = {}
    for name in config.finetune_inits:
        if name == "convirt":
            inits["convirt"] = f"convirt:{layout.pretrain}"
        elif name in CONTROL_DIRS:
            inits[name] = str(layout.pretraining(name))
        elif name == "imagenet":
            if run_decisions(layout).get("imagenet", imagenet_cached()):
                inits["imagenet"] = "imagenet"
        else:
            inits[name] = name
    return inits


def run_finetune(config: PipelineConfig, layout: RunLayout, *, runs: Mapping[str, str] | None = None,
                 resume: bool = True) -> str:
    """Fine-tune one classifier per run (name -> init; default: the config's finetune_inits)."""
    from usconvirt.data.split import read_split
    from usconvirt.training.finetune import finetune

    ds, notes = _dataset(layout), []
    split = read_split(layout.split, ds)
    wanted = finetune_runs(config, layout) if runs is None else dict(runs)
    for name, init in wanted.items():
        metrics = finetune(ds, split, layout.finetuning(name), replace(config.finetune, init=init),
                           resume=resume)
        test_f1 = metrics["test"]["macro_f1"]
        notes.append(f"{name} best epoch {metrics['best_epoch']}, val macro-F1 "
                     f"{metrics['val']['macro_f1']:.3f}, test macro-F1 "
                     f"{'n/a' if test_f1 is None else f'{test_f1:.3f}'}")
    skipped = [n for n in config.finetune_inits if runs is None and n not in wanted]
    if skipped:
        notes.append(f"skipped {', '.join(skipped)} (weights not available offline)")
    return "; ".join(notes)


def _finetune_outputs(config: PipelineConfig, layout: RunLayout) -> list[Path]:
    return [layout.finetuning(name) / PREDICTIONS for name in finetune_runs(config, layout)]


# --- evaluate ---------------------------------------------------------------------------------------
def run_evaluate(config: PipelineConfig, layout: RunLayout, *, runs: Mapping[str, Path] | None = None,
                 sides: bool = True) -> str:
    """Table 1 of the fine-tuned runs, with kidney-level rows from the dataset's sides (`sides`)."""
    from usconvirt.evaluation.evaluate import evaluate_runs
    from usconvirt.evaluation.exam_level import dataset_sides

    if runs is None:
        runs = {name: layout.finetuning(name) for name in finetune_runs(config, layout)}
    metrics = evaluate_runs(runs, layout.evaluation, n_bootstrap=config.evaluation.n_bootstrap,
                            seed=config.evaluation.seed,
                            sides=dataset_sides(layout.dataset_dir) if sides else None)
    return f"{len(runs)} runs, {len(metrics)} metric groups"


def headline(layout: RunLayout) -> str:
    """One line: test macro-F1 per initialisation with its bootstrap CI, from evaluation/metrics.json."""
    runs = json.loads((layout.evaluation / METRICS_JSON).read_text())["runs"]
    return "test macro-F1: " + ", ".join(
        f"{name} {m['macro_f1']['value']:.3f} ({m['macro_f1']['ci_low']:.3f}-{m['macro_f1']['ci_high']:.3f})"
        for name, m in runs.items())


# --- represent --------------------------------------------------------------------------------------
def run_represent(config: PipelineConfig, layout: RunLayout, *, imagenet: bool | None = None) -> str:
    """t-SNE, probes, retrieval and zero-shot of every encoder; ImageNet's where the run fine-tuned it."""
    from usconvirt.evaluation.represent import measure_run

    if imagenet is None:
        imagenet = "imagenet" in finetune_runs(config, layout)
    measure_run(layout, dataset=layout.dataset, imagenet=imagenet, seed=config.evaluation.seed)
    return "t-SNE, linear probe, kNN, retrieval and zero-shot written"


# --- label efficiency -------------------------------------------------------------------------------
def run_label_efficiency(config: PipelineConfig, layout: RunLayout) -> str:
    from usconvirt.data.split import read_split
    from usconvirt.evaluation.label_efficiency import LabelEfficiencyConfig, label_efficiency

    # Each (init, fraction) run records what it was made from; only runs whose inputs changed are redone.
    inits = finetune_runs(config, layout)
    made_from = {name: {"init": init, "encoder": _encoder_fingerprint(init),
                        "split": fingerprint(layout.split)} for name, init in inits.items()}
    settings = LabelEfficiencyConfig(fractions=config.label_efficiency.fractions,
                                     finetune=replace(config.finetune, init="random"),
                                     n_bootstrap=config.evaluation.n_bootstrap, seed=config.evaluation.seed)
    table = label_efficiency(_dataset(layout), read_split(layout.split), inits, layout.evaluation, settings,
                             made_from=made_from)
    return f"{len(table)} fine-tuning runs"


def _encoder_fingerprint(init: str) -> str | None:
    """The pre-trained encoder an init starts from (ConVIRT's or a control's), fingerprinted; None for inits
    with no file behind them."""
    encoder = Path(init.removeprefix("convirt:")) / "image_encoder"
    return fingerprint(encoder) if encoder.is_dir() else None


# --- report -----------------------------------------------------------------------------------------
def run_report(config: PipelineConfig, layout: RunLayout) -> str:
    from usconvirt.evaluation.report import write_report

    return str(write_report(layout, dataset=layout.dataset))


def _files(*names: str):
    """Paths of the layout by attribute (`split`, `selected`, ...), or `attribute/file` below one."""
    def paths(config: PipelineConfig, layout: RunLayout) -> list[Path]:
        return [getattr(layout, head).joinpath(*rest) for head, *rest in (n.split("/") for n in names)]
    return paths


def _cluster_inputs(config: PipelineConfig, layout: RunLayout) -> list[Path]:
    """The dataset and split, and the hand-written cluster mapping: editing it reruns the clustering."""
    mapping = [Path(config.cluster_mapping)] if config.cluster_mapping else []
    return _files("dataset_dir", "split")(config, layout) + mapping


def _checkpoints(pattern: str):
    """Checkpoint directories below the run directory (e.g. every pre-training run's)."""
    return lambda config, layout: sorted(p for p in layout.out.glob(pattern)
                                         if p.is_dir() and p.name == CHECKPOINTS)


SYNTH = Stage("synth", run_synth, inputs=_files(), outputs=_files("dataset_dir"), sections=("synth",),
              enabled=lambda config, layout: not config.dataset)
SPLIT = Stage("split", run_split, inputs=_files("dataset_dir"), outputs=_files("split"), sections=("split",))
CLUSTER = Stage("cluster", run_cluster, inputs=_cluster_inputs,
                outputs=_files("assignments", "selected"), sections=("cluster", "cluster_mapping"),
                state=_checkpoints(f"cluster/{CHECKPOINTS}"))
SENTENCES = Stage("sentences", run_sentences, inputs=_files("dataset_dir"),
                  outputs=_files("sentences", "sentences_summary"), sections=("sentences",))
PAIR = Stage("pair", run_pair, inputs=_files("selected", "sentences", "split"), outputs=_files("pairs"),
             sections=("pairing",))
WEAK_LABELS = Stage("weak_labels", run_weak_labels, inputs=_files("sentences", "split"),
                    outputs=_files("weak_labels"), sections=("pairing",))
TOKENIZER = Stage("tokenizer", run_tokenizer, inputs=_files("dataset_dir", "split"),
                  outputs=_files("tokenizer/tokenizer.json"), sections=("tokenizer",))
PRETRAIN = Stage("pretrain", run_pretrain, inputs=_files("pairs", "weak_labels", "tokenizer"),
                 outputs=_pretrain_outputs, sections=("pretrain",),
                 state=_checkpoints(f"pretrain*/{CHECKPOINTS}"))
FINETUNE = Stage("finetune", run_finetune, inputs=_files("split", "pretrain/image_encoder"),
                 outputs=_finetune_outputs, sections=("finetune", "finetune_inits", "pretrain"),
                 state=_checkpoints(f"finetune/*/{CHECKPOINTS}"))
EVALUATE = Stage("evaluate", run_evaluate, inputs=_finetune_outputs,
                 outputs=_files(f"evaluation/{TABLE1_MD}"), sections=("evaluation",))
REPRESENT = Stage("represent", run_represent, inputs=_files("split", "pretrain/image_encoder"),
                  outputs=_files(f"evaluation/{TSNE_PLOT}"), sections=("evaluation", "pretrain"))
LABEL_EFFICIENCY = Stage("label_efficiency", run_label_efficiency,
                         inputs=_files("split", "pretrain/image_encoder"),
                         outputs=_files(f"evaluation/{LABEL_EFFICIENCY_TABLE}"),
                         sections=("label_efficiency", "finetune", "evaluation"),
                         enabled=lambda config, layout: config.label_efficiency.enabled)
REPORT = Stage("report", run_report, inputs=_files("evaluation", "split"), outputs=_files("report"))

STAGES: list[Stage] = [SYNTH, SPLIT, CLUSTER, SENTENCES, PAIR, WEAK_LABELS, TOKENIZER, PRETRAIN, FINETUNE,
                       EVALUATE, REPRESENT, LABEL_EFFICIENCY, REPORT]


def run(config: dict, **options) -> tuple[PipelineConfig, RunLayout]:
    """`usconvirt run`: validate `config`, then run every stage above (see pipeline.run_pipeline)."""
    return run_pipeline(config, STAGES, decide=machine_decisions, **options)
