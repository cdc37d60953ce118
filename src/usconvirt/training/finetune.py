"""Fine-tune the normal/abnormal kidney classifier (paper section 4.3) from one initialisation.

All weights (encoder and linear head) are trained with generalized cross-entropy by default, under the
pre-training augmentations. Which model is kept, and where its decision threshold sits, is the
`protocol`: `f1_at_half` keeps the best validation macro-F1 at P(abnormal) >= 0.5; `auc_then_threshold`
keeps the best validation ROC AUC, then takes the threshold of best validation macro-F1 with the rule
export uses (evaluation/exam_level.py's `choose_threshold`) and applies it to the test frames. Training
stops early when the protocol's score has not improved for `patience` epochs. See docs/finetuning.md.

A chosen model is marked `collapsed` in metrics.json, and the stage says so in one line, when it predicts
one class for nearly all frames of a part, or when its ROC AUC on that part is not above chance beyond
its patient-bootstrap interval (the interval's low end at or below 0.5). The test is threshold-free on
purpose: no macro-F1 level is "chance", since an image-independent labelling scores anywhere up to 0.5
depending on its predicted rate and the part's prevalence. A collapsed classifier is no evidence for or
against its initialisation.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, WeightedRandomSampler

from usconvirt.config import check_fields, save_yaml, to_dict
from usconvirt.data.augment import augment_batch, build_augment
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import FrameDataset, load_frames
from usconvirt.errors import InputError
from usconvirt.evaluation.exam_level import choose_threshold
from usconvirt.evaluation.metrics import confidence_interval, patient_resamples, roc_auc
from usconvirt.io import atomic_dir, require_columns, write_json, write_table
from usconvirt.losses.gce import GeneralizedCrossEntropy
from usconvirt.losses.truncated_gce import ScheduledTruncatedGCE
from usconvirt.models.classifier import KidneyClassifier, predict_abnormal, save_classifier
from usconvirt.models.image_encoder import image_encoder_from
from usconvirt.models.memory_format import standard_layout, use_channels_last
from usconvirt.run_layout import METRICS_JSON, PREDICTIONS, VAL_PREDICTIONS
from usconvirt.training.best_weights import BestWeights
from usconvirt.training.config import FinetuneConfig
from usconvirt.training.trainer import build_trainer, fit

log = logging.getLogger(__name__)

LABELED_PARTS = ("train", "val", "test")
CHANCE_AUC = 0.5  # ROC AUC of any score independent of the image, whatever the prevalence
COLLAPSE_SHARE = 0.98  # one predicted class for at least this share of a part's frames
COLLAPSE_BOOTSTRAP = 1000  # patient resamples for the AUC interval of the collapse test
# the validation score each protocol keeps its checkpoint by (logged by FinetuneModule)
SELECTION_METRIC = {"f1_at_half": "val_macro_f1", "auc_then_threshold": "val_roc_auc"}


def check_config(config: FinetuneConfig) -> None:
    """Fail early, with the field named, on settings that would only break mid-run: the config's declared
    choices and ranges, for callers that built it without `config.from_dict`."""
    check_fields(config, source="finetune config")


def labeled_frames(dataset: Dataset, split: pd.DataFrame) -> pd.DataFrame:
    """Normal/abnormal frames of labeled exams: image_id, exam_id, patient_id, part, target (1: abnormal)."""
    require_columns(split, ("exam_id", "patient_id", "part"), "split")
    images = dataset.images[dataset.images["label"].isin(["normal", "abnormal"])]
    frames = images[["image_id", "exam_id", "label"]].merge(
        split[["exam_id", "patient_id", "part"]].astype(str), on="exam_id", how="inner")
    frames = frames[frames["part"].isin(LABELED_PARTS)].reset_index(drop=True)
    frames["target"] = (frames["label"] == "abnormal").astype(int)
    return frames.drop(columns="label")


def subsample_train(train: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """A `fraction` of the training frames, stratified by label, keeping at least one frame per class."""
    if fraction >= 1.0:
        return train
    rng = np.random.default_rng(seed)
    keep = []
    for _, group in train.groupby("target"):
        n = max(1, round(fraction * len(group)))
        keep.extend(rng.choice(group.index.to_numpy(), size=n, replace=False).tolist())
    return train.loc[sorted(keep)].reset_index(drop=True)


def class_counts(targets: np.ndarray) -> np.ndarray:
    return np.bincount(targets, minlength=2)


def build_loss(config: FinetuneConfig, class_weight: torch.Tensor | None, n_train: int = 0) -> nn.Module:
    if config.loss == "ce":
        return nn.CrossEntropyLoss(weight=class_weight)
    if config.loss == "tgce":
        return ScheduledTruncatedGCE(n_train, config.q, config.k, class_weight)
    return GeneralizedCrossEntropy(config.q, class_weight)


class IndexedFrames(FrameDataset):
    """(uint8 frame (1, S, S), target, position): truncated GCE's pruning mask is indexed by training-set
    position; the frame is scaled to [0, 1] on the training device (4x fewer bytes to copy)."""

    def __getitem__(self, i: int):
        return torch.from_numpy(np.array(self.frames[i])).unsqueeze(0), self.targets[i], i


class FinetuneModule(L.LightningModule):
    """Trains a KidneyClassifier on augmented batches and logs the validation macro-F1."""

    def __init__(self, model: KidneyClassifier, config: FinetuneConfig,
                 class_weight: torch.Tensor | None = None, train_frames: np.ndarray | None = None,
                 train_targets: np.ndarray | None = None) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.augment = build_augment(config.augment, config.image_size)
        self.loss_fn = build_loss(config, class_weight, 0 if train_targets is None else len(train_targets))
        self._train = (train_frames, train_targets)
        self._val_probs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, *rest = batch
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        return (images, *rest)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        images, targets, *index = batch
        logits = self.model(augment_batch(self.augment, images))
        if isinstance(self.loss_fn, ScheduledTruncatedGCE):
            loss = self.loss_fn(logits, targets, index[0] if index else None)
        else:
            loss = self.loss_fn(logits, targets)
        # on the progress bar only where one is drawn: a bar reads the loss back to the host every step
        self.log("train_loss", loss, on_step=True, on_epoch=True,
                 prog_bar=self.trainer.progress_bar_callback is not None, batch_size=len(targets))
        return loss

    def on_train_epoch_start(self) -> None:
        """Truncated GCE: after the warm-up, every `tgce_prune_every` epochs, prune samples with p_y <= k."""
        if not isinstance(self.loss_fn, ScheduledTruncatedGCE) or self._train[0] is None:
            return
        since = self.current_epoch - self.config.tgce_warmup_epochs
        if since < 0 or since % self.config.tgce_prune_every:
            return
        frames, targets = self._train
        prob_abnormal = predict_abnormal(self.model, frames, self.config.batch_size)
        self.model.train()
        keep = torch.as_tensor(np.where(targets == 1, prob_abnormal, 1.0 - prob_abnormal) > self.config.k)
        self.loss_fn.keep.copy_(keep.to(self.loss_fn.keep.device))
        log.info("truncated GCE, epoch %d: %d of %d training frames pruned (p_y <= %.2f)",
                 self.current_epoch, int((~keep).sum()), len(keep), self.config.k)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, targets = batch
        self._val_probs.append(F.softmax(self.model(images), dim=1)[:, 1].detach().cpu())
        self._val_targets.append(targets.cpu())

    def on_validation_epoch_end(self) -> None:
        probs, targets = torch.cat(self._val_probs).numpy(), torch.cat(self._val_targets).numpy()
        self._val_probs.clear()
        self._val_targets.clear()
        self.log("val_macro_f1", f1_score(targets, probs >= 0.5, average="macro", labels=[0, 1],
                                          zero_division=0), prog_bar=True)
        # one class only: no ranking to score, every checkpoint ties at chance
        auc = roc_auc_score(targets, probs) if len(np.unique(targets)) == 2 else 0.5
        self.log("val_roc_auc", float(auc))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)


def train_loader(frames: np.ndarray, targets: np.ndarray, config: FinetuneConfig) -> DataLoader:
    """Shuffled batches; with class_balance='sampler', drawn with replacement at inverse class frequency."""
    data = IndexedFrames(frames, targets)
    generator = torch.Generator().manual_seed(config.seed)
    feeding = dict(num_workers=config.loader_workers, persistent_workers=config.loader_workers > 0,
                   pin_memory=torch.cuda.is_available())
    if config.class_balance != "sampler":
        return DataLoader(data, batch_size=config.batch_size, shuffle=True, generator=generator, **feeding)
    per_class = 1.0 / np.maximum(class_counts(targets), 1)
    sampler = WeightedRandomSampler(torch.as_tensor(per_class[targets], dtype=torch.double),
                                    num_samples=len(targets), replacement=True, generator=generator)
    return DataLoader(data, batch_size=config.batch_size, sampler=sampler, **feeding)


def prediction_table(frames: pd.DataFrame, probs: np.ndarray, threshold: float = 0.5) -> pd.DataFrame:
    """The predictions.csv schema (docs/data-format.md); pred: P(abnormal) >= `threshold`."""
    return pd.DataFrame({
        "image_id": frames["image_id"].to_numpy(),
        "exam_id": frames["exam_id"].to_numpy(),
        "patient_id": frames["patient_id"].to_numpy(),
        "label": frames["target"].to_numpy(),
        "prob_abnormal": probs.astype(float),
        "pred": (probs >= threshold).astype(int),
    })


def _summary(predictions: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Macro-F1, accuracy, ROC AUC with its patient-bootstrap interval, the shares of frames predicted and
    truly abnormal, and whether the model collapsed on this part."""
    if predictions.empty:
        return {"macro_f1": None, "accuracy": None, "roc_auc": None, "roc_auc_ci": None,
                "pred_abnormal_share": None, "true_abnormal_share": None, "collapsed": None}
    y, pred = predictions["label"], predictions["pred"]
    macro_f1 = float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0))
    pred_share = float(pred.mean())
    auc, ci = auc_interval(predictions, seed)
    return {"macro_f1": macro_f1, "accuracy": float(accuracy_score(y, pred)), "roc_auc": auc,
            "roc_auc_ci": ci, "pred_abnormal_share": pred_share, "true_abnormal_share": float(y.mean()),
            "collapsed": collapsed(pred_share, None if ci is None else ci[0])}


def auc_interval(predictions: pd.DataFrame, seed: int = 0) -> tuple[float | None, list[float] | None]:
    """ROC AUC of prob_abnormal and its 95% patient-bootstrap interval; None for a part of one class."""
    labels, scores = predictions["label"].to_numpy(), predictions["prob_abnormal"].to_numpy()
    value = float(roc_auc(labels, scores)[0])
    if np.isnan(value):
        return None, None
    weights = patient_resamples(predictions["patient_id"].to_numpy(), COLLAPSE_BOOTSTRAP, seed)
    low, high = confidence_interval(roc_auc(labels, scores, weights))
    return value, [low, high]


def collapsed(pred_abnormal_share: float, auc_low: float | None) -> bool:
    """One class predicted for nearly all frames, or a ranking not above chance: the low end of the ROC
    AUC's bootstrap interval at or below 0.5 (None, a part with one class: the ranking is not judged)."""
    one_class = max(pred_abnormal_share, 1.0 - pred_abnormal_share) >= COLLAPSE_SHARE
    return bool(one_class or (auc_low is not None and auc_low <= CHANCE_AUC))


def collapse_warnings(init: str, val: dict[str, Any]) -> list[str]:
    """The one-line warnings metrics.json carries (and the stage logs) for a collapsed chosen model."""
    if not val.get("collapsed"):
        return []
    ranking = ("no ROC AUC (one class)" if val.get("roc_auc") is None else
               f"ROC AUC {val['roc_auc']:.3f} (95% CI {val['roc_auc_ci'][0]:.3f}-{val['roc_auc_ci'][1]:.3f},"
               f" chance {CHANCE_AUC})")
    share = val["pred_abnormal_share"]
    # a small validation part leaves a wide interval: say which test fired, not only the flag's name
    what = ("collapsed" if max(share, 1.0 - share) >= COLLAPSE_SHARE
            else "collapsed (its ranking is not told from chance on validation)")
    return [f"fine-tuning from {init} {what}: the chosen checkpoint predicts abnormal for "
            f"{100 * share:.0f}% of validation frames (truly "
            f"{100 * val['true_abnormal_share']:.0f}%), validation {ranking}"]


def decision_threshold(config: FinetuneConfig, val: pd.DataFrame) -> float:
    """0.5 for f1_at_half; else the validation threshold of best macro-F1, by export's rule."""
    if config.protocol == "f1_at_half":
        return 0.5
    return choose_threshold(val["label"].to_numpy(), val["prob_abnormal"].to_numpy(), "macro_f1")


def finetune(dataset: Dataset, split: pd.DataFrame, out_dir: str | Path,
             config: FinetuneConfig | None = None, *, resume: bool = True) -> dict[str, Any]:
    """Fine-tune, keep the best model by the protocol's validation score, write test/val predictions
    (thresholded as the protocol says) and metrics."""
    config = config or FinetuneConfig()
    check_config(config)
    out_dir = Path(out_dir)
    L.seed_everything(config.seed, workers=True, verbose=False)

    frames = labeled_frames(dataset, split)
    parts = {p: frames[frames["part"] == p].reset_index(drop=True) for p in LABELED_PARTS}
    parts["train"] = subsample_train(parts["train"], config.train_fraction, config.seed)
    for part in ("train", "val"):
        if parts[part].empty:
            raise InputError(f"no normal/abnormal frames in the '{part}' part of the split", file="split",
                             field="part")
    pixels = {p: load_frames(dataset, config.image_size, image_ids=parts[p]["image_id"].tolist(),
                             cache_dir=config.cache_dir, workers=config.workers)[0] for p in LABELED_PARTS}
    targets = {p: np.array(parts[p]["target"], dtype=np.int64) for p in LABELED_PARTS}  # writable copies
    counts = class_counts(targets["train"])
    log.info("fine-tuning from %s on %d train (%d normal, %d abnormal), %d val, %d test frames", config.init,
             len(targets["train"]), counts[0], counts[1], len(targets["val"]), len(targets["test"]))

    if len(np.unique(targets["val"])) < 2:
        log.warning("the validation frames hold one class only: model selection is uninformative;"
                    " give the split more labeled validation exams")
    class_weight = None
    if config.class_balance == "weights":
        class_weight = torch.as_tensor(counts.sum() / (2.0 * np.maximum(counts, 1)), dtype=torch.float32)
    if not resume and (out_dir / "checkpoints").exists():
        shutil.rmtree(out_dir / "checkpoints")  # starting over: old best/last checkpoints would be versioned
    model = KidneyClassifier(image_encoder_from(config.init, config.arch))
    if config.channels_last:
        use_channels_last(model.encoder)
    module = FinetuneModule(model, config, class_weight, pixels["train"], targets["train"])
    monitor = SELECTION_METRIC[config.protocol]
    best = BestWeights(monitor) if config.best_in_memory else ModelCheckpoint(
        dirpath=out_dir / "checkpoints", filename="best", monitor=monitor, mode="max", save_top_k=1,
        save_last=False)
    stop = EarlyStopping(monitor=monitor, mode="max", patience=config.patience)
    trainer = build_trainer(dataclasses.replace(config.trainer, max_epochs=config.epochs), out_dir,
                            callbacks=[best, stop])
    val_loader = DataLoader(FrameDataset(pixels["val"], targets["val"]), batch_size=config.batch_size)
    fit(trainer, module, out_dir, resume=resume,
        train_dataloaders=train_loader(pixels["train"], targets["train"], config), val_dataloaders=val_loader)

    if isinstance(best, BestWeights):
        best_epoch = best.restore(module)
    else:
        best_epoch = _restore_best(module, best.best_model_path)
    model = standard_layout(module.model.cpu())
    probs = {p: predict_abnormal(model, pixels[p], config.batch_size) for p in ("val", "test")}
    threshold = decision_threshold(config, prediction_table(parts["val"], probs["val"]))
    predictions = {p: prediction_table(parts[p], probs[p], threshold) for p in ("val", "test")}
    val = _summary(predictions["val"], config.seed)
    warnings = collapse_warnings(config.init, val)
    for line in warnings:
        log.warning(line)
    metrics = {
        "init": config.init,
        "loss": config.loss,
        "class_balance": config.class_balance,
        "protocol": config.protocol,
        "selected_by": monitor,
        "threshold": threshold,
        "best_epoch": best_epoch,
        "epochs_run": int(trainer.current_epoch),
        "val": val,
        "test": _summary(predictions["test"], config.seed),
        "warnings": warnings,
        "frames": {p: int(len(targets[p])) for p in LABELED_PARTS},
        "train_class_counts": {"normal": int(counts[0]), "abnormal": int(counts[1])},
    }
    if trainer.is_global_zero:  # under DDP every rank predicts the same thing; one writes it
        _write_outputs(out_dir, predictions, model, metrics, config)
    log.info("validation macro-F1 %.3f, test macro-F1 %s", metrics["val"]["macro_f1"],
             "n/a" if metrics["test"]["macro_f1"] is None else f"{metrics['test']['macro_f1']:.3f}")
    return metrics


def _write_outputs(out_dir: Path, predictions: dict[str, pd.DataFrame], model: KidneyClassifier,
                   metrics: dict[str, Any], config: FinetuneConfig) -> None:
    write_table(predictions["test"], out_dir / PREDICTIONS)
    write_table(predictions["val"], out_dir / VAL_PREDICTIONS)
    with atomic_dir(out_dir / "model", overwrite=True) as tmp:
        save_classifier(model, tmp)
    write_json(metrics, out_dir / METRICS_JSON)
    save_yaml(to_dict(config), out_dir / "config.yaml")


def _restore_best(module: FinetuneModule, checkpoint: str) -> int | None:
    """Load the selected weights into `module`; return their epoch (0-based), None without a checkpoint."""
    if not checkpoint:
        return None
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    return int(state["epoch"])
