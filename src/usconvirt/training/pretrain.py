"""ConVIRT pre-training with Lightning: pair data, batched GPU augmentations, gathered-negative InfoNCE.

Runs the same on one CPU, one GPU, torchrun or SLURM (strategy='ddp'): the loss of every rank sees the
embeddings of all ranks, gathered with gradients, so a step equals one step on the global batch.

A slice of the exams (`heldout_fraction`) is kept out of training: after training, image-to-text
retrieval on it says whether the model learned to match frames with their own reports, and the mean
loss per epoch is compared with chance, ln(batch) (`diagnostics.json`, `epoch_loss.csv`), or ln(group) with
`contrastive_group` (losses/grouped_infonce.py): a physical batch of G x 32 scored as G 32-way losses.
`shuffle_texts` is the shuffled-text control: every exam gets another exam's sentences, so what the
encoder still gains comes from training on ultrasound frames, not from the reports.
`equivalent_texts` gives texts that say the same thing shared targets (training/equivalent_texts.py);
whatever it is, the summary and diagnostics.json count how many in-batch negatives were equivalent texts.
`report_label_weight` adds the reports' weak labels (`usconvirt.weak_labels`) as a GCE term on the image
features: ConVIRT and the report-label control (`training/report_labels.py`) in one loss.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from usconvirt.config import check_fields, to_dict
from usconvirt.data.augment import augment_batch, build_augment
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.losses.gce import gce_per_sample
from usconvirt.losses.grouped_infonce import contrastive_chance, grouped_convirt_loss
from usconvirt.losses.infonce import convirt_loss, equivalent_negatives
from usconvirt.models.convirt import ConVIRT, create_convirt, load_tokenizer, save_convirt
from usconvirt.models.memory_format import standard_layout, use_channels_last
from usconvirt.training.config import PretrainConfig, TrainerConfig
from usconvirt.training.diagnostics import loss_summary, record_diagnostics, split_heldout_exams
from usconvirt.training.equivalent_texts import TextKeys
from usconvirt.training.fast_step import compile_encoders, optimizer_options, pad_tokens
from usconvirt.training.monitoring import FinalMetrics
from usconvirt.training.trainer import build_trainer, fit
from usconvirt.weak_labels import LABELS, UNKNOWN_CODE, exam_codes, frame_labels

log = logging.getLogger(__name__)


class PairDataset(torch.utils.data.Dataset):
    """(uint8 frame (1, S, S), text, weak label, text key) per pair; the sentence is drawn anew at every
    visit. The weak label is a class index, UNKNOWN_CODE where unknown or not given; texts of equal key are
    equivalent (`keys`; default: equal once normalised)."""

    def __init__(self, frames: np.ndarray, texts: list[list[str]], sample_sentence: bool = True,
                 labels: list[int] | None = None, keys: TextKeys | None = None) -> None:
        if len(frames) != len(texts):
            raise ValueError(f"{len(frames)} frames but {len(texts)} text lists")
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.texts = texts
        self.sample_sentence = sample_sentence
        self.labels = torch.as_tensor([UNKNOWN_CODE] * len(frames) if labels is None else labels)
        self.keys = keys or TextKeys()

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, int]:
        texts = list(self.texts[i])
        # torch's RNG: seeded per worker by Lightning's seed_everything(workers=True)
        chosen = [texts[int(torch.randint(len(texts), ()))]] if self.sample_sentence else texts
        return self.frames[i].unsqueeze(0), " ".join(chosen), int(self.labels[i]), self.keys(chosen)


class PairCollate:
    """Stack frames (still uint8, 4x less to copy to the device) and tokenise the texts in the worker."""

    def __init__(self, tokenizer, max_length: int, padding: str = "longest") -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding = padding

    def __call__(self, items: list[tuple]) -> dict[str, torch.Tensor]:
        frames, texts, labels, *keys = zip(*items, strict=True)
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        if self.padding != "longest":
            tokens = pad_tokens(tokens, self.padding, self.max_length, self.tokenizer.pad_token_id)
        batch = {"images": torch.stack(frames), "labels": torch.tensor(labels),
                 "input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}
        if keys:  # the texts' equivalence keys
            batch["text_keys"] = torch.tensor(keys[0], dtype=torch.long)
        return batch


def pair_loader(dataset: PairDataset, tokenizer, config: PretrainConfig, *, shuffle: bool = True,
                ) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=shuffle, drop_last=len(dataset) > config.batch_size,
        num_workers=config.num_workers, persistent_workers=config.num_workers > 0,
        collate_fn=PairCollate(tokenizer, config.text.max_length, config.text_padding),
        pin_memory=torch.cuda.is_available())


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then cosine decay to 0 at `total` steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class ContrastiveModule(L.LightningModule):
    """What every pre-training shares: augmentations, optimizer and schedule, and the loss curve that
    travels in checkpoints (for loss.csv); subclasses write `training_step` and call `record_loss`."""

    def __init__(self, model: torch.nn.Module, config: PretrainConfig) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.augment = build_augment(config.augment, config.image_size)
        self.loss_history: list[tuple[int, int, float]] = []
        self._pending: list[tuple[int, int, torch.Tensor]] = []

    def gather(self, embeddings: torch.Tensor, *, sync_grads: bool = True) -> torch.Tensor:
        """Negatives from every rank, gradients flowing back to each; the tensor itself on one device."""
        if self.trainer.world_size > 1:
            return self.all_gather(embeddings, sync_grads=sync_grads).flatten(0, 1)
        return embeddings

    def record_loss(self, loss: torch.Tensor, batch_size: int, chance: float | None = None) -> None:
        # a loss on the progress bar is read back to the host every step: only where a bar is drawn
        shown = self.trainer.progress_bar_callback is not None
        self.log("train/loss", loss, prog_bar=shown, batch_size=batch_size)
        if chance:
            self.log("train/loss_over_chance", loss.detach() / chance, batch_size=batch_size)
        self._pending.append((self.global_step, self.current_epoch, loss.detach()))

    def on_train_epoch_end(self) -> None:
        self._flush_losses()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._flush_losses()
        checkpoint["loss_history"] = self.loss_history

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.loss_history = list(checkpoint.get("loss_history", []))

    def _flush_losses(self) -> None:
        """Move recorded losses off the device in one go rather than syncing at every step."""
        if self._pending:
            values = torch.stack([loss for _, _, loss in self._pending]).float().cpu().tolist()
            self.loss_history += [(s, e, v) for (s, e, _), v in zip(self._pending, values, strict=True)]
            self._pending = []

    def loss_table(self) -> pd.DataFrame:
        """Mean loss per optimizer step (accumulated batches share a step)."""
        self._flush_losses()
        table = pd.DataFrame(self.loss_history, columns=["step", "epoch", "loss"])
        return table.groupby(["step", "epoch"], as_index=False)["loss"].mean()

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if self.config.optimizer not in optimizers:
            raise InputError(f"unknown optimizer '{self.config.optimizer}', expected adam or adamw",
                             field="optimizer")
        optimizer = optimizers[self.config.optimizer](
            params, lr=self.config.lr, weight_decay=self.config.weight_decay,
            **optimizer_options(self.config.fused_optimizer, self.device))
        if self.config.schedule == "constant":
            return optimizer
        if self.config.schedule != "cosine":
            raise InputError(f"unknown schedule '{self.config.schedule}', expected cosine or constant",
                             field="schedule")
        total = int(self.trainer.estimated_stepping_batches)
        warmup = self.config.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: cosine_with_warmup(step, warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ConVIRTModule(ContrastiveModule):
    """The training step of the paper's section 4.2 (Dadoun et al., ISBI 2023): ConVIRT's loss, plus
    the weak-label term when `report_label_weight` is above 0."""

    def __init__(self, model: ConVIRT, config: PretrainConfig) -> None:
        super().__init__(model, config)
        self.negatives = [0, 0]  # in-batch negatives seen: equivalent texts, all
        # discarded after training: only the image encoder carries over. Drawn aside from the seeded
        # stream, so data order and first views stay those of ConVIRT alone.
        self.report_head = None
        if config.report_label_weight > 0:
            with torch.random.fork_rng(devices=[]):
                self.report_head = torch.nn.Linear(model.image_encoder.out_dim, len(LABELS))

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 -> [0, 1] floats, and ConVIRT's augmentations batched on the training device."""
        images = batch["images"].float().div_(255.0)
        if self.training:
            images = augment_batch(self.augment, images)
        return {**batch, "images": images}

    def negative_summary(self) -> dict[str, float]:
        """How many in-batch negatives were equivalent texts (summary, diagnostics.json)."""
        equivalent, negatives = int(self.negatives[0]), self.negatives[1]
        return {"equivalent_negatives": equivalent, "negatives": negatives,
                "equivalent_negative_share": equivalent / negatives if negatives else 0.0}

    def gather(self, embeddings: torch.Tensor, *, sync_grads: bool = True) -> torch.Tensor:
        """Contrastive groups formed per rank need no other rank's rows."""
        if self.config.contrastive_group is not None and not self.config.group_across_ranks:
            return embeddings
        return super().gather(embeddings, sync_grads=sync_grads)

    def chance(self, batch_size: int) -> float:
        """ln of the candidates each row of this step's loss is scored against."""
        gathered = self.config.contrastive_group is None or self.config.group_across_ranks
        return contrastive_chance(batch_size * (self.trainer.world_size if gathered else 1),
                                  self.config.contrastive_group)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        features = self.model.image_encoder(batch["images"])
        image_emb = self.gather(self.model.image_projection(features))
        text_emb = self.gather(self.model.text_features(batch["input_ids"], batch["attention_mask"]))
        # gathered like the embeddings, so rows and keys stay aligned across ranks
        keys = self.gather(batch["text_keys"], sync_grads=False) if "text_keys" in batch else None
        targets = keys if self.config.equivalent_texts != "none" else None
        if self.config.contrastive_group is not None:
            loss = grouped_convirt_loss(image_emb, text_emb, self.config.contrastive_group, self.config.tau,
                                        self.config.lam, targets)
        else:
            loss = convirt_loss(image_emb, text_emb, self.config.tau, self.config.lam, targets)
        if keys is not None:
            self.count_equivalent(keys)
        # the loss curve and its chance line stay the image-text loss's; the label term is logged beside
        self.record_loss(loss, len(batch["images"]), self.chance(len(batch["images"])))
        if self.report_head is None:
            return loss
        return loss + self.config.report_label_weight * self.report_label_loss(features, batch["labels"])

    def report_label_loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean GCE over the frames whose weak label is known (0 for a batch without one)."""
        known = (labels != UNKNOWN_CODE).float()
        per_frame = gce_per_sample(self.report_head(features), labels.clamp(min=0))
        loss = (per_frame * known).sum() / known.sum().clamp(min=1.0)
        self.log("train/report_label_loss", loss, batch_size=len(labels))
        return loss

    def count_equivalent(self, keys: torch.Tensor) -> None:
        """Add this step's equivalent and all in-batch negatives, over the candidates each row is scored
        against (its contrastive group, or the whole gathered batch)."""
        group = self.config.contrastive_group
        if group is not None and group < len(keys):
            cut = len(keys) // group * group
            counts = [equivalent_negatives(keys[:cut].view(-1, group))]
            if len(keys) - cut > 1:
                counts.append(equivalent_negatives(keys[cut:]))
        else:
            counts = [equivalent_negatives(keys)]
        for equivalent, negatives in counts:
            self.negatives[0] += equivalent
            self.negatives[1] += negatives


def trainer_config(config: PretrainConfig) -> TrainerConfig:
    """The trainer settings with this stage's epochs, steps and seed."""
    return dataclasses.replace(config.trainer, max_epochs=config.epochs, max_steps=config.max_steps,
                               seed=config.seed)


def donor_exams(exam_ids: list[str], seed: int) -> dict[str, str]:
    """The shuffled-text control's derangement: each exam -> the other exam whose report its frames get;
    the same seed gives every exam the same donor."""
    exams = list(dict.fromkeys(exam_ids))
    if len(exams) < 2:
        raise InputError("shuffling texts across exams needs at least two exams", field="shuffle_texts")
    order = [exams[i] for i in np.random.default_rng(seed).permutation(len(exams))]
    return {exam: order[(i + 1) % len(order)] for i, exam in enumerate(order)}


def shuffled_texts(exam_ids: list[str], texts: list[list[str]], seed: int) -> list[list[str]]:
    """The shuffled-text control: every exam's frames get the sentences of another exam."""
    by_exam = dict(zip(exam_ids, texts, strict=True))
    donor = donor_exams(exam_ids, seed)
    return [list(by_exam[donor[exam]]) for exam in exam_ids]


def pair_weak_labels(dataset: Dataset, pairs: pd.DataFrame, weak_labels: pd.DataFrame,
                     config: PretrainConfig) -> list[int]:
    """Each pair's weak-label class index; under `shuffle_texts` its donor exam's, as its sentences are."""
    if config.shuffle_texts:
        donor = donor_exams(pair_exam_ids(pairs), config.seed)
        return exam_codes([donor[exam] for exam in pair_exam_ids(pairs)], weak_labels)
    return frame_labels(dataset.images.set_index("image_id"), pairs["image_id"].astype(str).tolist(),
                        weak_labels)


def pair_exam_ids(pairs: pd.DataFrame) -> list[str]:
    """Each pair's exam; a table without exam_id makes every frame its own exam."""
    column = pairs["exam_id"] if "exam_id" in pairs.columns else pairs["image_id"]
    return column.astype(str).tolist()


def pretrain(
    dataset: Dataset,
    pairs: pd.DataFrame,
    tokenizer_dir: str | Path | None,
    out_dir: str | Path,
    config: PretrainConfig | None = None,
    *,
    weak_labels: pd.DataFrame | None = None,
    resume: bool = True,
    callbacks: list[L.Callback] | None = None,
    findings: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Pre-train on `pairs` (image_id, exam_id, texts), save the model under `out_dir`; returns a summary.

    `weak_labels` (a `usconvirt.weak_labels` table) is read when `report_label_weight` is above 0;
    `findings` (normalised sentence -> finding, `sentence_findings`) for `equivalent_texts: findings`."""
    config = config or PretrainConfig()
    out_dir = Path(out_dir)
    if pairs.empty:
        raise InputError("no image-text pairs to pre-train on", field="pairs")
    check_fields(config, source="pretrain config")
    if config.equivalent_texts == "findings" and not findings:
        raise InputError("equivalent_texts 'findings' needs the sentence table's findings",
                         file="pretrain config", field="equivalent_texts")
    if config.report_label_weight > 0 and weak_labels is None:
        raise InputError("report_label_weight needs the weak labels (usconvirt weak-labels)",
                         file="pretrain config", field="report_label_weight")
    if tokenizer_dir is None and config.text.name == "tiny":
        raise InputError("the 'tiny' text encoder needs a retrained tokenizer", field="tokenizer")
    if tokenizer_dir is not None and not Path(tokenizer_dir).is_dir():
        raise InputError("no such tokenizer directory (expected `usconvirt tokenizer`'s output)",
                         file=tokenizer_dir)
    L.seed_everything(config.seed, workers=True, verbose=False)
    tokenizer = load_tokenizer(tokenizer_dir if tokenizer_dir is not None else config.text.name)
    train_pairs, heldout = split_heldout_exams(pairs, config.heldout_fraction, config.seed)
    exam_ids = pair_exam_ids(train_pairs)
    texts = [list(t) for t in train_pairs["texts"]]
    if config.shuffle_texts:
        texts = shuffled_texts(exam_ids, texts, config.seed)
    frames, _ = load_frames(dataset, config.image_size, image_ids=train_pairs["image_id"].tolist(),
                            workers=max(1, config.num_workers))
    labels = (pair_weak_labels(dataset, train_pairs, weak_labels, config) if config.report_label_weight > 0
              else None)
    data = PairDataset(frames, texts, config.sample_sentence, labels,
                       TextKeys(config.equivalent_texts, findings))
    module = ConVIRTModule(create_convirt(config.model_config(), tokenizer), config)
    if config.channels_last:
        use_channels_last(module.model.image_encoder)
    if config.compile:
        compile_encoders(module.model)
    # retrieval on the held-out pairs once training ends, on the training device, logged with the curves
    recall = FinalMetrics(lambda m: heldout_retrieval(m.model.eval(), dataset, heldout, config), "heldout")
    trainer = build_trainer(trainer_config(config), out_dir, callbacks=[*(callbacks or []), recall],
                            enable_validation=False)
    fit(trainer, module, out_dir, resume=resume, train_dataloaders=pair_loader(data, tokenizer, config))
    losses = module.loss_table()
    chance = module.chance(min(len(data), config.batch_size))
    summary = {"pairs": len(data), "heldout_pairs": len(heldout), "steps": int(trainer.global_step),
               **loss_summary(losses, chance), **module.negative_summary(), "out_dir": str(out_dir)}
    if trainer.is_global_zero:
        model = standard_layout(module.model.cpu().eval())
        save_convirt(model, out_dir, {"pretrain": to_dict(config)})
        retrieval = recall.result if recall.result is not None else heldout_retrieval(model, dataset, heldout,
                                                                                         config)
        summary.update(record_diagnostics(out_dir, losses, chance, retrieval, module.negative_summary()))
    log.info("pre-training done: %s", summary)
    return summary


def heldout_retrieval(model: ConVIRT, dataset: Dataset, heldout: pd.DataFrame,
                      config: PretrainConfig) -> dict[str, Any] | None:
    """Image-to-text recall@1/5/10 on held-out pairs (each frame's own exam description among theirs)."""
    from usconvirt.evaluation.retrieval import embed_images, embed_texts, recall_at_k

    if heldout.empty:
        return None
    frames, _ = load_frames(dataset, config.image_size, image_ids=heldout["image_id"].tolist())
    descriptions = [" ".join(texts) for texts in heldout["texts"]]
    candidates = list(dict.fromkeys(descriptions))
    with torch.no_grad():
        image_emb = embed_images(model, frames, 64)
        text_emb = embed_texts(model, candidates, 64)
    relevant = np.asarray(descriptions)[:, None] == np.asarray(candidates)[None, :]
    recalls = recall_at_k(image_emb @ text_emb.T, relevant, (1, 5, 10))
    return {"r@1": recalls["R@1"], "r@5": recalls["R@5"], "r@10": recalls["R@10"], "n": len(frames),
            "candidates": len(candidates)}
