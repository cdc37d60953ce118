"""The run directory's files: every name a stage reads or writes under RUN/, in one place.

A stage reaches a file only through a `RunLayout`, so a file is renamed here or nowhere. A stage
subcommand (`usconvirt split DATASET --out FILE`) builds a layout whose paths are the ones given on
the command line; `usconvirt run` builds one from the run directory alone.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

DATASET_DIR = "dataset"  # the synthetic corpus, when the config names no dataset
SPLIT = "split.csv"
CLUSTER_DIR = "cluster"
ASSIGNMENTS = "assignments.csv"
SELECTED = "selected.csv"
SENTENCES = "sentences.parquet"  # its exam summary beside it, _summary (sentences_summary_path)
PAIRS = "pairs.parquet"  # its accounting beside it, .json
WEAK_LABELS = "weak_labels.parquet"  # the reports read as labels; its counts beside it, .json
TOKENIZER_DIR = "tokenizer"
PRETRAIN_DIR = "pretrain"
# Pre-trainings run beside ConVIRT when finetune_inits names them: init name -> run directory. The
# controls, and ConVIRT with equivalent texts as shared positives (docs/pretraining.md).
CONTROL_DIRS = {"shuffled": "pretrain_shuffled", "simclr": "pretrain_simclr",
                "report_labels": "pretrain_report_labels", "convirt-equiv": "pretrain_equiv"}
FINETUNE_DIR = "finetune"
EVALUATION_DIR = "evaluation"
REPORT = "report.html"
MANIFEST = "manifest.json"
LOCK = ".lock"
RESOLVED_CONFIG = "config.resolved.yaml"
CHECKPOINTS = "checkpoints"

# Files inside a stage's own directory that another module reads back (a later stage, the report, the
# bundle export): the writer and its readers take the name from here.
METRICS_JSON = "metrics.json"  # cluster/, finetune/NAME/ and evaluation/ each write one
CLUSTER_MAPPING = "mapping.yaml"  # cluster/: cluster -> organ
MONTAGES_DIR = "montages"  # cluster/: one PNG a cluster
PREDICTIONS = "predictions.csv"  # finetune/NAME/: test frames
VAL_PREDICTIONS = "val_predictions.csv"  # finetune/NAME/: validation frames
LOSS = "loss.csv"  # a pre-training directory: one row a logged step
EPOCH_LOSS = "epoch_loss.csv"
DIAGNOSTICS = "diagnostics.json"
TABLE1_MD = "table1.md"  # evaluation/: Table 1 as the paper lays it out
TABLE1_CSV = "table1.csv"  # evaluation/: Table 1 with `metric/run` columns
METRICS_TABLE = "metrics.csv"  # evaluation/: metrics.json as a long table
REPRESENTATION = "representation.csv"
TSNE_PLOT = "tsne.png"
RETRIEVAL = "retrieval.json"
LABEL_EFFICIENCY_TABLE = "label_efficiency.csv"
LABEL_EFFICIENCY_PLOT = "label_efficiency.png"


def sentences_summary_path(sentences: str | Path) -> Path:
    """Where the sentences table's exam summary goes: beside it, its stem + '_summary', same format."""
    sentences = Path(sentences)
    return sentences.with_name(f"{sentences.stem}_summary{sentences.suffix}")


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run; each one left None is RUN/<its standard name>."""

    out: Path
    dataset: Path | None = None  # None: the run config's dataset, else RUN/dataset (`dataset_dir`)
    split: Path | None = None
    cluster: Path | None = None
    selected: Path | None = None  # the cluster stage's kidney frames
    sentences: Path | None = None
    pairs: Path | None = None
    weak_labels: Path | None = None
    tokenizer: Path | None = None
    pretrain: Path | None = None
    finetune: Path | None = None
    evaluation: Path | None = None
    report: Path | None = None

    def __post_init__(self) -> None:
        defaults = {"split": SPLIT, "cluster": CLUSTER_DIR, "sentences": SENTENCES, "pairs": PAIRS,
                    "weak_labels": WEAK_LABELS, "tokenizer": TOKENIZER_DIR, "pretrain": PRETRAIN_DIR,
                    "finetune": FINETUNE_DIR, "evaluation": EVALUATION_DIR, "report": REPORT}
        object.__setattr__(self, "out", Path(self.out))
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in defaults:
                value = self.out / defaults[f.name]
            if value is not None:
                object.__setattr__(self, f.name, Path(value))
        if self.selected is None:
            object.__setattr__(self, "selected", self.cluster / SELECTED)

    @property
    def dataset_dir(self) -> Path:
        return self.dataset if self.dataset is not None else self.out / DATASET_DIR

    @property
    def assignments(self) -> Path:
        return self.cluster / ASSIGNMENTS

    @property
    def sentences_summary(self) -> Path:
        return sentences_summary_path(self.sentences)

    @property
    def pairs_accounting(self) -> Path:
        return self.pairs.with_suffix(".json")

    @property
    def weak_labels_accounting(self) -> Path:
        return self.weak_labels.with_suffix(".json")

    def pretraining(self, init: str = "convirt") -> Path:
        """ConVIRT's pre-training directory, or a control's (`shuffled`, `simclr`, `report_labels`)."""
        return self.pretrain if init == "convirt" else self.out / CONTROL_DIRS[init]

    def finetuning(self, name: str) -> Path:
        return self.finetune / name

    @classmethod
    def of(cls, run: str | Path | RunLayout) -> RunLayout:
        """`run` itself when it is a layout, else the standard layout of the run directory `run`."""
        return run if isinstance(run, RunLayout) else cls(Path(run))

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST

    @property
    def lock(self) -> Path:
        return self.out / LOCK

    @property
    def resolved_config(self) -> Path:
        return self.out / RESOLVED_CONFIG

    def relative(self, path: Path) -> str:
        """`path` as the manifest records it: relative to the run directory where it lies below it."""
        return str(path.relative_to(self.out) if path.is_relative_to(self.out) else path)
