"""The pipeline's stages, in order: thin adapters from the run config to each stage's Python API.

Every stage reads earlier stages' files from the run directory and writes its own, so any stage can
be rerun alone (see pipeline.py for the manifest that decides what reruns).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd

from usconvirt.config import from_dict
from usconvirt.io import atomic_path, read_table, write_table
from usconvirt.pipeline import RunContext, Stage

log = logging.getLogger(__name__)


def _dataset(ctx: RunContext):
    from usconvirt.data import load_dataset

    if "dataset" not in ctx.cache:
        ctx.cache["dataset"] = load_dataset(ctx.dataset_dir)
    return ctx.cache["dataset"]


def _split(ctx: RunContext) -> pd.DataFrame:
    return read_table(ctx.path("split.csv"))


def _exams_in(ctx: RunContext, part: str) -> set[str]:
    split = _split(ctx)
    return set(split.loc[split["part"] == part, "exam_id"])


def _note(ctx: RunContext, stage: str, text: str) -> None:
    ctx.cache[f"summary:{stage}"] = text


# --- synth ------------------------------------------------------------------------------------------
def run_synth(ctx: RunContext) -> None:
    from usconvirt.synth.config import SynthConfig
    from usconvirt.synth.corpus import generate_corpus

    config = from_dict(SynthConfig, ctx.section("synth"), source="config.synth")
    generate_corpus(ctx.dataset_dir, replace(config, overwrite=True))
    ctx.cache.pop("dataset", None)
    ds = _dataset(ctx)
    _note(ctx, "synth", f"{len(ds.exams)} exams, {ds.exams['patient_id'].nunique()} patients, "
                        f"{len(ds.images)} frames")


# --- split ------------------------------------------------------------------------------------------
def run_split(ctx: RunContext) -> None:
    from usconvirt.data.split import SplitConfig, split_dataset

    split = split_dataset(_dataset(ctx), from_dict(SplitConfig, ctx.section("split"), source="config.split"))
    write_table(split, ctx.path("split.csv"))
    counts = split["part"].value_counts()
    _note(ctx, "split", ", ".join(f"{part} {counts.get(part, 0)}" for part in ("train", "val", "test",
                                                                                 "pretrain")) + " exams")


# --- cluster ----------------------------------------------------------------------------------------
def run_cluster(ctx: RunContext) -> None:
    from usconvirt.clustering.config import ClusterConfig
    from usconvirt.clustering.run import run_clustering

    ds = _dataset(ctx)
    pool = _exams_in(ctx, "pretrain")
    ids = ds.images.loc[ds.images["exam_id"].isin(pool), "image_id"].tolist()
    config = from_dict(ClusterConfig, ctx.section("cluster"), source="config.cluster")
    mapping = ctx.config.get("cluster_mapping")
    metrics = run_clustering(ds, ctx.path("cluster"), config, image_ids=ids, mapping_file=mapping)
    kept = len(read_table(ctx.path("cluster", "selected.csv")))
    scores = (f", kidney F1 {metrics['kidney_f1']:.3f}, weighted F1 {metrics['weighted_f1']:.3f}"
              if metrics.get("kidney_f1") is not None else "")
    _note(ctx, "cluster", f"{kept} of {len(ids)} pre-training frames kept as kidney{scores}")


# --- sentences --------------------------------------------------------------------------------------
def run_sentences(ctx: RunContext) -> None:
    from usconvirt.text.sentences import SentenceConfig, exam_summary, extract_sentences

    config = from_dict(SentenceConfig, ctx.section("sentences"), source="config.sentences")
    exams = _dataset(ctx).exams
    sentences = extract_sentences(exams, config)
    write_table(sentences, ctx.path("sentences.parquet"))
    write_table(exam_summary(sentences, exams, config.organ), ctx.path("sentences_summary.parquet"))
    _note(ctx, "sentences", f"{len(sentences)} {config.organ} sentences in "
                            f"{sentences['exam_id'].nunique()} of {len(exams)} reports")


# --- pair -------------------------------------------------------------------------------------------
def run_pair(ctx: RunContext) -> None:
    from usconvirt.pairing import PairConfig, build_pairs

    config = from_dict(PairConfig, ctx.section("pairing"), source="config.pairing")
    frames = read_table(ctx.path("cluster", "selected.csv"))
    sentences = pd.read_parquet(ctx.path("sentences.parquet"))
    sentences = sentences[sentences["exam_id"].isin(_exams_in(ctx, "pretrain"))]
    pairs, accounting = build_pairs(_dataset(ctx), frames, sentences, config)
    write_table(pairs, ctx.path("pairs.parquet"))
    with atomic_path(ctx.path("pairs.json")) as tmp:
        tmp.write_text(json.dumps(accounting, indent=2))
    _note(ctx, "pair", f"{accounting['frames_kept']} pairs from {accounting['exams']} exams, "
                       f"{accounting['frames_without_text']} frames without text")


# --- tokenizer --------------------------------------------------------------------------------------
def run_tokenizer(ctx: RunContext) -> None:
    from usconvirt.text.tokenizer import pretraining_reports, train_tokenizer

    section = ctx.section("tokenizer")
    reports = pretraining_reports(_dataset(ctx), ctx.path("split.csv"))
    train_tokenizer(reports, ctx.path("tokenizer"), **section)
    _note(ctx, "tokenizer", f"trained on {len(reports)} pre-training reports")


# --- pretrain ---------------------------------------------------------------------------------------
def pretrain_config(ctx: RunContext):
    from usconvirt.training.pretrain import PretrainConfig

    return from_dict(PretrainConfig, ctx.section("pretrain"), source="config.pretrain")


def run_pretrain(ctx: RunContext) -> None:
    from usconvirt.pairing import load_pairs
    from usconvirt.training.pretrain import pretrain

    result = pretrain(_dataset(ctx), load_pairs(ctx.path("pairs.parquet")), ctx.path("tokenizer"),
                      ctx.path("pretrain"), pretrain_config(ctx))
    _note(ctx, "pretrain", f"{result['steps']} steps on {result['pairs']} pairs, loss "
                           f"{result['first_loss']:.3f} -> {result['final_loss']:.3f}")


# --- finetune ---------------------------------------------------------------------------------------
def imagenet_available() -> bool:
    """Whether microsoft/resnet-50 loads without a download (a local cache, or network allowed)."""
    from usconvirt.errors import InputError
    from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder

    try:
        create_image_encoder(ImageEncoderConfig(weights="imagenet"))
    except (InputError, OSError, ValueError):
        return False
    return True


def finetune_inits(ctx: RunContext) -> dict[str, str]:
    """Run name -> init, for the inits the config asks for (imagenet only where its weights load)."""
    wanted = ctx.config.get("finetune_inits", ["random", "convirt", "imagenet"])
    inits = {}
    for name in wanted:
        if name == "convirt":
            inits["convirt"] = f"convirt:{ctx.path('pretrain')}"
        elif name == "imagenet":
            if "imagenet" not in ctx.cache:
                ctx.cache["imagenet"] = imagenet_available()
            if ctx.cache["imagenet"]:
                inits["imagenet"] = "imagenet"
        else:
            inits[name] = name
    return inits


def finetune_config(ctx: RunContext, init: str):
    from usconvirt.training.finetune import FinetuneConfig

    section = ctx.section("finetune")
    # Random init uses the pre-training architecture, so the comparison isolates the weights.
    section.setdefault("arch", pretrain_config(ctx).image.arch)
    section.setdefault("image_size", pretrain_config(ctx).image_size)
    return replace(from_dict(FinetuneConfig, section, source="config.finetune"), init=init)


def run_finetune(ctx: RunContext) -> None:
    from usconvirt.training.finetune import finetune

    split, notes = _split(ctx), []
    skipped = [n for n in ctx.config.get("finetune_inits", []) if n not in finetune_inits(ctx)]
    for name, init in finetune_inits(ctx).items():
        metrics = finetune(_dataset(ctx), split, ctx.path("finetune", name), finetune_config(ctx, init),
                           resume=False)
        notes.append(f"{name} val macro-F1 {metrics['val']['macro_f1']:.3f}")
    if skipped:
        notes.append(f"skipped {', '.join(skipped)} (weights not available offline)")
    _note(ctx, "finetune", "; ".join(notes))


# --- evaluate ---------------------------------------------------------------------------------------
def run_evaluate(ctx: RunContext) -> None:
    from usconvirt.evaluation.evaluate import evaluate_runs

    section = ctx.section("evaluation")
    runs = {name: ctx.path("finetune", name) for name in finetune_inits(ctx)}
    metrics = evaluate_runs(runs, ctx.path("evaluation"), n_bootstrap=section.get("n_bootstrap", 1000),
                            seed=section.get("seed", 0))
    _note(ctx, "evaluate", f"{len(runs)} runs, {len(metrics)} metric groups")


def headline(ctx: RunContext) -> str:
    """One line: test macro-F1 per initialisation with its bootstrap CI, from evaluation/metrics.json."""
    runs = json.loads(ctx.path("evaluation", "metrics.json").read_text())["runs"]
    return "test macro-F1: " + ", ".join(
        f"{name} {m['macro_f1']['value']:.3f} ({m['macro_f1']['ci_low']:.3f}-{m['macro_f1']['ci_high']:.3f})"
        for name, m in runs.items())


# --- represent --------------------------------------------------------------------------------------
def run_represent(ctx: RunContext) -> None:
    from usconvirt.evaluation.report import measure_run

    section = ctx.section("evaluation")
    measure_run(ctx.out, dataset=ctx.dataset_dir, imagenet="imagenet" in finetune_inits(ctx),
                seed=section.get("seed", 0))
    _note(ctx, "represent", "t-SNE, linear probe, kNN, retrieval and zero-shot written")


# --- label efficiency -------------------------------------------------------------------------------
def run_label_efficiency(ctx: RunContext) -> None:
    from usconvirt.evaluation.label_efficiency import LabelEfficiencyConfig, label_efficiency

    section = ctx.section("label_efficiency")
    # The stage reruns only when its inputs changed: runs from an older pre-training must not be reused.
    shutil.rmtree(ctx.path("evaluation", "runs"), ignore_errors=True)
    fractions = tuple(section.get("fractions", (0.01, 0.1, 1.0)))
    base = finetune_config(ctx, "random")
    inits = finetune_inits(ctx)
    table = label_efficiency(_dataset(ctx), _split(ctx), inits, ctx.path("evaluation"),
                             LabelEfficiencyConfig(fractions=fractions, finetune=base))
    _note(ctx, "label_efficiency", f"{len(table)} fine-tuning runs")


# --- report -----------------------------------------------------------------------------------------
def run_report(ctx: RunContext) -> None:
    from usconvirt.evaluation.report import write_report

    path = write_report(ctx.out, dataset=ctx.dataset_dir)
    _note(ctx, "report", str(path))


def _files(*names: str):
    return lambda ctx: [ctx.path(*n.split("/")) for n in names]


def _dataset_dir(ctx: RunContext) -> list[Path]:
    return [ctx.dataset_dir]


def _finetune_outputs(ctx: RunContext) -> list[Path]:
    return [ctx.path("finetune", name, "predictions.csv") for name in finetune_inits(ctx)]


STAGES: list[Stage] = [
    Stage("synth", run_synth, inputs=lambda ctx: [], outputs=_dataset_dir, section="synth",
          enabled=lambda ctx: not ctx.config.get("dataset")),
    Stage("split", run_split, inputs=_dataset_dir, outputs=_files("split.csv"), section="split"),
    Stage("cluster", run_cluster, inputs=lambda ctx: [*_dataset_dir(ctx), ctx.path("split.csv")],
          outputs=_files("cluster/assignments.csv", "cluster/selected.csv"),
          section=("cluster", "cluster_mapping")),
    Stage("sentences", run_sentences, inputs=_dataset_dir, outputs=_files("sentences.parquet"),
          section="sentences"),
    Stage("pair", run_pair, inputs=_files("cluster/selected.csv", "sentences.parquet", "split.csv"),
          outputs=_files("pairs.parquet"), section="pairing"),
    Stage("tokenizer", run_tokenizer, inputs=lambda ctx: [*_dataset_dir(ctx), ctx.path("split.csv")],
          outputs=_files("tokenizer/tokenizer.json"), section="tokenizer"),
    Stage("pretrain", run_pretrain, inputs=_files("pairs.parquet", "tokenizer"),
          outputs=_files("pretrain/image_encoder", "pretrain/loss.csv"), section="pretrain"),
    Stage("finetune", run_finetune, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_finetune_outputs, section=("finetune", "finetune_inits", "pretrain")),
    Stage("evaluate", run_evaluate, inputs=_finetune_outputs, outputs=_files("evaluation/table1.md"),
          section="evaluation"),
    Stage("represent", run_represent, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_files("evaluation/tsne.png"), section=("evaluation", "pretrain")),
    Stage("label_efficiency", run_label_efficiency, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_files("evaluation/label_efficiency.csv"),
          section=("label_efficiency", "finetune"),
          enabled=lambda ctx: bool(ctx.section("label_efficiency").get("enabled", False))),
    Stage("report", run_report, inputs=_files("evaluation", "split.csv"), outputs=_files("report.html")),
]
