"""The pipeline's stages, in order: thin adapters from the run config to each stage's Python API.

Every stage reads earlier stages' files from the run directory and writes its own, so any stage can
be rerun alone (see pipeline.py for the manifest that decides what reruns).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from usconvirt.config import from_dict
from usconvirt.io import read_table, write_json, write_table
from usconvirt.pipeline import RunContext, Stage, fingerprint, run_pipeline
from usconvirt.pipeline_config import PipelineConfig, validate_pipeline_config

log = logging.getLogger(__name__)


def _dataset(ctx: RunContext):
    from usconvirt.data import load_dataset

    if "dataset" not in ctx.cache:
        ctx.cache["dataset"] = load_dataset(ctx.dataset_dir)
    return ctx.cache["dataset"]


def _split(ctx: RunContext) -> pd.DataFrame:
    return read_table(ctx.path("split.csv"))


def _exams_in(ctx: RunContext, part: str) -> set[str]:
    from usconvirt.data.split import exams_in

    return exams_in(_split(ctx), part)


def settings(ctx: RunContext) -> PipelineConfig:
    """The typed config (validated by run_pipeline; built here for a context made by hand)."""
    if ctx.settings is None:
        ctx.settings = validate_pipeline_config(ctx.config)
    return ctx.settings


def _note(ctx: RunContext, stage: str, text: str) -> None:
    ctx.cache[f"summary:{stage}"] = text


# --- synth ------------------------------------------------------------------------------------------
def run_synth(ctx: RunContext) -> None:
    from usconvirt.synth.corpus import generate_corpus

    generate_corpus(ctx.dataset_dir, replace(settings(ctx).synth, overwrite=True))
    ctx.cache.pop("dataset", None)
    ds = _dataset(ctx)
    _note(ctx, "synth", f"{len(ds.exams)} exams, {ds.exams['patient_id'].nunique()} patients, "
                        f"{len(ds.images)} frames")


# --- split ------------------------------------------------------------------------------------------
def run_split(ctx: RunContext) -> None:
    from usconvirt.data.split import split_counts, split_dataset, split_summary

    split = split_dataset(_dataset(ctx), settings(ctx).split)
    write_table(split, ctx.path("split.csv"))
    _note(ctx, "split", split_summary(split_counts(_dataset(ctx), split)))


# --- cluster ----------------------------------------------------------------------------------------
def run_cluster(ctx: RunContext) -> None:
    from usconvirt.clustering.cli import split_frames
    from usconvirt.clustering.run import run_clustering

    ds = _dataset(ctx)
    ids, train = split_frames(ds, _split(ctx), "pretrain", source=str(ctx.path("split.csv")))
    metrics = run_clustering(ds, ctx.path("cluster"), settings(ctx).cluster, image_ids=ids,
                             mapping_file=settings(ctx).cluster_mapping, mapping_ids=train)
    kept = len(read_table(ctx.path("cluster", "selected.csv")))
    scores = (f", kidney F1 {metrics['kidney_f1']:.3f}, weighted F1 {metrics['weighted_f1']:.3f}"
              if metrics.get("kidney_f1") is not None else "")
    _note(ctx, "cluster", f"{kept} of {len(ids)} pre-training frames kept as kidney{scores}")


# --- sentences --------------------------------------------------------------------------------------
def run_sentences(ctx: RunContext) -> None:
    from usconvirt.text.sentences import distinct_share, write_sentences

    config, exams = settings(ctx).sentences, _dataset(ctx).exams
    sentences = write_sentences(exams, ctx.path("sentences.parquet"), config)
    _note(ctx, "sentences", f"{len(sentences)} {config.organ} sentences in "
                            f"{sentences['exam_id'].nunique()} of {len(exams)} reports; distinct share "
                            + ", ".join(f"{o} {v:.2f}" for o, v in distinct_share(sentences).items()))


# --- pair -------------------------------------------------------------------------------------------
def run_pair(ctx: RunContext) -> None:
    from usconvirt.pairing import PairConfig, build_pairs

    config = from_dict(PairConfig, ctx.section("pairing"), source="config.pairing")
    frames = read_table(ctx.path("cluster", "selected.csv"))
    sentences = pd.read_parquet(ctx.path("sentences.parquet"))
    sentences = sentences[sentences["exam_id"].isin(_exams_in(ctx, "pretrain"))]
    pairs, accounting = build_pairs(_dataset(ctx), frames, sentences, config)
    write_table(pairs, ctx.path("pairs.parquet"))
    write_json(accounting, ctx.path("pairs.json"))
    _note(ctx, "pair", f"{accounting['frames_kept']} pairs from {accounting['exams']} exams, "
                       f"{accounting['frames_without_text']} frames without text")


# --- tokenizer --------------------------------------------------------------------------------------
def run_tokenizer(ctx: RunContext) -> None:
    from usconvirt.text.tokenizer import pretraining_reports, train_tokenizer

    reports = pretraining_reports(_dataset(ctx), ctx.path("split.csv"))
    train_tokenizer(reports, ctx.path("tokenizer"), settings(ctx).tokenizer)
    _note(ctx, "tokenizer", f"trained on {len(reports)} pre-training reports")


# --- pretrain ---------------------------------------------------------------------------------------
def pretrain_config(ctx: RunContext):
    from usconvirt.training.pretrain import PretrainConfig

    return from_dict(PretrainConfig, ctx.section("pretrain"), source="config.pretrain")


# Controls pre-trained beside ConVIRT when finetune_inits names them: init name -> run directory.
CONTROL_DIRS = {"shuffled": "pretrain_shuffled", "simclr": "pretrain_simclr"}


def run_pretrain(ctx: RunContext) -> None:
    from usconvirt.pairing import load_pairs
    from usconvirt.training.pretrain import pretrain
    from usconvirt.training.simclr import pretrain_simclr

    pairs, config, notes = load_pairs(ctx.path("pairs.parquet")), pretrain_config(ctx), []
    wanted = settings(ctx).finetune_inits
    runs = {"convirt": lambda out: pretrain(_dataset(ctx), pairs, ctx.path("tokenizer"), out, config)}
    if "shuffled" in wanted:
        runs["shuffled"] = lambda out: pretrain(_dataset(ctx), pairs, ctx.path("tokenizer"), out,
                                                replace(config, shuffle_texts=True))
    if "simclr" in wanted:
        runs["simclr"] = lambda out: pretrain_simclr(_dataset(ctx), pairs, out, config)
    for name, run in runs.items():
        result = run(ctx.path(CONTROL_DIRS.get(name, "pretrain")))
        notes.append(f"{name} {result['steps']} steps, last-epoch loss {result['last_epoch_mean_loss']:.3f} "
                     f"= {result['ratio']:.2f} x chance")
    _note(ctx, "pretrain", f"{len(pairs)} pairs; " + "; ".join(notes))


def _pretrain_outputs(ctx: RunContext) -> list[Path]:
    """ConVIRT's files and each control's encoder that finetune_inits asks for (a new one reruns it)."""
    controls = [CONTROL_DIRS[n] for n in settings(ctx).finetune_inits if n in CONTROL_DIRS]
    return [ctx.path("pretrain", "image_encoder"), ctx.path("pretrain", "loss.csv"),
            *(ctx.path(d, "image_encoder") for d in controls)]


# --- finetune ---------------------------------------------------------------------------------------
def imagenet_cached() -> bool:
    """Whether microsoft/resnet-50's weights are in the local Hugging Face cache; never downloads."""
    from huggingface_hub import try_to_load_from_cache

    from usconvirt.models.image_encoder import IMAGENET_WEIGHTS

    if not isinstance(try_to_load_from_cache(IMAGENET_WEIGHTS, "config.json"), str):
        return False
    return any(isinstance(try_to_load_from_cache(IMAGENET_WEIGHTS, name), str)
               for name in ("model.safetensors", "pytorch_model.bin"))


def run_decisions(ctx: RunContext) -> dict[str, object]:
    """Choices that depend on the machine, made once per run from the config and local files only."""
    return {"imagenet": "imagenet" in settings(ctx).finetune_inits and imagenet_cached()}


def finetune_inits(ctx: RunContext) -> dict[str, str]:
    """Run name -> init, for the inits the config asks for (imagenet only where its weights are cached)."""
    wanted = settings(ctx).finetune_inits
    if "imagenet" not in ctx.decisions:
        ctx.decisions.update(run_decisions(ctx))
    inits = {}
    for name in wanted:
        if name == "convirt":
            inits["convirt"] = f"convirt:{ctx.path('pretrain')}"
        elif name in CONTROL_DIRS:
            inits[name] = str(ctx.path(CONTROL_DIRS[name]))
        elif name == "imagenet":
            if ctx.decisions["imagenet"]:
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
    skipped = [n for n in settings(ctx).finetune_inits if n not in finetune_inits(ctx)]
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

    config = settings(ctx).evaluation
    runs = {name: ctx.path("finetune", name) for name in finetune_inits(ctx)}
    metrics = evaluate_runs(runs, ctx.path("evaluation"), n_bootstrap=config.n_bootstrap, seed=config.seed)
    _note(ctx, "evaluate", f"{len(runs)} runs, {len(metrics)} metric groups")


def headline(ctx: RunContext) -> str:
    """One line: test macro-F1 per initialisation with its bootstrap CI, from evaluation/metrics.json."""
    runs = json.loads(ctx.path("evaluation", "metrics.json").read_text())["runs"]
    return "test macro-F1: " + ", ".join(
        f"{name} {m['macro_f1']['value']:.3f} ({m['macro_f1']['ci_low']:.3f}-{m['macro_f1']['ci_high']:.3f})"
        for name, m in runs.items())


# --- represent --------------------------------------------------------------------------------------
def run_represent(ctx: RunContext) -> None:
    from usconvirt.evaluation.represent import measure_run

    measure_run(ctx.out, dataset=ctx.dataset_dir, imagenet="imagenet" in finetune_inits(ctx),
                seed=settings(ctx).evaluation.seed)
    _note(ctx, "represent", "t-SNE, linear probe, kNN, retrieval and zero-shot written")


# --- label efficiency -------------------------------------------------------------------------------
def run_label_efficiency(ctx: RunContext) -> None:
    from usconvirt.evaluation.label_efficiency import LabelEfficiencyConfig, label_efficiency

    # Each (init, fraction) run records what it was made from; only runs whose inputs changed are redone.
    inits = finetune_inits(ctx)
    made_from = {name: {"init": init, "encoder": _encoder_fingerprint(ctx, init),
                        "split": fingerprint(ctx.path("split.csv"))} for name, init in inits.items()}
    config = LabelEfficiencyConfig(fractions=settings(ctx).label_efficiency.fractions,
                                   finetune=finetune_config(ctx, "random"),
                                   n_bootstrap=settings(ctx).evaluation.n_bootstrap,
                                   seed=settings(ctx).evaluation.seed)
    table = label_efficiency(_dataset(ctx), _split(ctx), inits, ctx.path("evaluation"), config,
                             made_from=made_from)
    _note(ctx, "label_efficiency", f"{len(table)} fine-tuning runs")


def _encoder_fingerprint(ctx: RunContext, init: str) -> str | None:
    """The pre-trained encoder an init starts from, fingerprinted; None for inits with no file behind them."""
    if init.startswith("convirt:"):
        return fingerprint(Path(init.split(":", 1)[1]) / "image_encoder")
    return None


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


def _checkpoints(pattern: str):
    """Checkpoint directories below the run directory (e.g. every pre-training run's)."""
    return lambda ctx: sorted(p for p in ctx.out.glob(pattern) if p.is_dir() and p.name == "checkpoints")


STAGES: list[Stage] = [
    Stage("synth", run_synth, inputs=lambda ctx: [], outputs=_dataset_dir, section="synth",
          enabled=lambda ctx: not ctx.config.get("dataset")),
    Stage("split", run_split, inputs=_dataset_dir, outputs=_files("split.csv"), section="split"),
    Stage("cluster", run_cluster, inputs=lambda ctx: [*_dataset_dir(ctx), ctx.path("split.csv")],
          outputs=_files("cluster/assignments.csv", "cluster/selected.csv"),
          section=("cluster", "cluster_mapping"), state=_checkpoints("cluster/checkpoints")),
    Stage("sentences", run_sentences, inputs=_dataset_dir,
          outputs=_files("sentences.parquet", "sentences_summary.parquet"), section="sentences"),
    Stage("pair", run_pair, inputs=_files("cluster/selected.csv", "sentences.parquet", "split.csv"),
          outputs=_files("pairs.parquet"), section="pairing"),
    Stage("tokenizer", run_tokenizer, inputs=lambda ctx: [*_dataset_dir(ctx), ctx.path("split.csv")],
          outputs=_files("tokenizer/tokenizer.json"), section="tokenizer"),
    Stage("pretrain", run_pretrain, inputs=_files("pairs.parquet", "tokenizer"),
          outputs=_pretrain_outputs, section="pretrain",
          state=_checkpoints("pretrain*/checkpoints")),
    Stage("finetune", run_finetune, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_finetune_outputs, section=("finetune", "finetune_inits", "pretrain")),
    Stage("evaluate", run_evaluate, inputs=_finetune_outputs, outputs=_files("evaluation/table1.md"),
          section="evaluation"),
    Stage("represent", run_represent, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_files("evaluation/tsne.png"), section=("evaluation", "pretrain")),
    Stage("label_efficiency", run_label_efficiency, inputs=_files("split.csv", "pretrain/image_encoder"),
          outputs=_files("evaluation/label_efficiency.csv"),
          section=("label_efficiency", "finetune", "evaluation"),
          enabled=lambda ctx: settings(ctx).label_efficiency.enabled),
    Stage("report", run_report, inputs=_files("evaluation", "split.csv"), outputs=_files("report.html")),
]


def run(config: dict, **options) -> RunContext:
    """`usconvirt run`: validate `config`, then run every stage above (see pipeline.run_pipeline)."""
    return run_pipeline(config, STAGES, decide=run_decisions, **options)
