"""ConVIRT pre-training with Lightning: pair data, batched GPU augmentations, gathered-negative InfoNCE.

Runs the same on one CPU, one GPU, torchrun or SLURM (strategy='ddp'): the loss of every rank sees the
embeddings of all ranks, gathered with gradients, so a step equals one step on the global batch.

A slice of the exams (`heldout_fraction`) is kept out of training: after training, image-to-text
retrieval on it says whether the model learned to match frames with their own reports, and the mean
loss per epoch is compared with chance, ln(batch) (`diagnostics.json`, `epoch_loss.csv`), or ln(group) with
`contrastive_group` (losses/grouped_infonce.py): a physical batch of G x 32 scored as G 32-way losses.
`shuffle_texts` is the shuffled-text control: every exam gets another exam's sentences, so what the
encoder still gains comes from training on ultrasound frames, not from the reports.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import pandas as pd
import torch

from usconvirt.config import to_dict
from usconvirt.data.augment import AugmentConfig, augment_batch, build_augment
from usconvirt.data.dataset import Dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.losses.grouped_infonce import contrastive_chance, grouped_convirt_loss
from usconvirt.losses.infonce import convirt_loss
from usconvirt.losses.nt_xent import nt_xent_loss
from usconvirt.models.convirt import ConVIRT, ConVIRTConfig, create_convirt, load_tokenizer, save_convirt
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.memory_format import standard_layout, use_channels_last
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.training.diagnostics import loss_summary, record_diagnostics, split_heldout_exams
from usconvirt.training.fast_step import TEXT_PADDINGS, compile_encoders, optimizer_options, pad_tokens
from usconvirt.training.monitoring import FinalMetrics
from usconvirt.training.trainer import TrainerConfig, build_trainer, fit

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig:
    """ConVIRT's published settings (PAPER.md Part 2); `epochs`/`max_steps` override the trainer's."""

    image: ImageEncoderConfig = field(default_factory=lambda: ImageEncoderConfig(arch="resnet50",
                                                                                  weights="imagenet"))
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    proj_dim: int = 512
    tau: float = 0.1
    lam: float = 0.75
    batch_size: int = 32  # per device; the loss's negatives come from all devices
    lr: float = 1e-4
    weight_decay: float = 1e-6
    optimizer: Literal["adam", "adamw"] = "adam"
    schedule: Literal["cosine", "constant"] = "cosine"  # cosine: after a linear warm-up
    warmup_steps: int = 0
    epochs: int = 10
    max_steps: int = -1
    image_size: int = 224
    sample_sentence: bool = True  # one sentence per step, uniformly; else all sentences joined
    # every sentence of the pair at once, the image's positive mass summed over them (MIL-NCE); it
    # takes precedence over sample_sentence. A pair with more than max_sentences draws that many.
    multiple_instance: bool = False
    max_sentences: int = 6
    shuffle_texts: bool = False  # control: each exam's sentences go to another exam's frames
    same_exam_positives: bool = False  # frames of one exam are positives of each other's texts
    # frames whose sentences read normal (pairs' reads_normal, from the report alone) are positives of
    # each other's texts: normal reports say the same thing, so as negatives they are false negatives
    normal_positives: bool = False
    # weight of an image-only two-view NT-Xent term added to the image-text loss (SLIP, Mu et al. 2022),
    # on its own linear head; 0: ConVIRT's loss alone. The shuffled-text control gets the same term.
    image_ssl_weight: float = 0.0
    heldout_fraction: float = 0.05  # exams kept out of training for the retrieval diagnostic
    num_workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    seed: int = 0
    # Speed (docs/pretraining.md, "Speed on a GPU"). Pairs per softmax: None, the whole batch (gathered
    # over ranks), ConVIRT's loss at batch 32; 32 keeps the paper's 32-way loss at any physical batch.
    contrastive_group: int | None = None
    group_across_ranks: bool = False  # DDP: groups cut from the gathered batch, not from each rank's own
    channels_last: bool = False  # NHWC weights and frames (tensor cores' layout); same values
    fused_optimizer: bool = False  # one fused Adam/AdamW kernel, on CUDA only
    # longest: pad to each batch's longest text; buckets: to the next of 16, 32, 64, ... max_length
    # (a few shapes, for cudnn.benchmark and torch.compile); max_length: one fixed shape
    text_padding: str = field(default="longest", metadata={"choices": TEXT_PADDINGS})
    compile: bool = False  # torch.compile both encoders (first steps slower while it compiles)

    def model_config(self) -> ConVIRTConfig:
        return ConVIRTConfig(image=self.image, text=self.text, proj_dim=self.proj_dim,
                             image_size=self.image_size)


class PairDataset(torch.utils.data.Dataset):
    """(uint8 frame (1, S, S), text, exam group) per pair; the sentence is drawn anew at every visit.

    With `max_sentences` (multiple-instance mode) the text is a tuple of exactly that many sentences: the
    pair's own, a random subset when it has more, padded with empty strings (masked out of the loss).
    """

    def __init__(self, frames: np.ndarray, texts: list[list[str]], sample_sentence: bool = True,
                 groups: np.ndarray | None = None, max_sentences: int | None = None) -> None:
        if len(frames) != len(texts):
            raise ValueError(f"{len(frames)} frames but {len(texts)} text lists")
        self.frames = torch.from_numpy(np.ascontiguousarray(frames))
        self.texts = texts
        self.sample_sentence = sample_sentence
        self.max_sentences = max_sentences
        # rows of one group are positives of each other's texts (same_exam_positives, normal_positives)
        self.groups = torch.as_tensor(np.arange(len(frames)) if groups is None else np.asarray(groups))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str | tuple[str, ...], int]:
        texts = self.texts[i]
        # torch's RNG: seeded per worker by Lightning's seed_everything(workers=True)
        if self.max_sentences is not None:
            k = self.max_sentences
            chosen = texts if len(texts) <= k else [texts[j] for j in sorted(torch.randperm(len(texts))[:k])]
            text = tuple(chosen) + ("",) * (k - len(chosen))
        elif self.sample_sentence:
            text = texts[int(torch.randint(len(texts), ()))]
        else:
            text = " ".join(texts)
        return self.frames[i].unsqueeze(0), text, int(self.groups[i])


class PairCollate:
    """Stack frames (still uint8, 4x less to copy to the device) and tokenise the texts in the worker."""

    def __init__(self, tokenizer, max_length: int, padding: str = "longest") -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding = padding

    def __call__(self, items: list[tuple[torch.Tensor, str | tuple[str, ...], int]],
                 ) -> dict[str, torch.Tensor]:
        texts = [text for _, text, _ in items]
        batch = {"images": torch.stack([frame for frame, _, _ in items]),
                 "groups": torch.tensor([group for _, _, group in items])}
        if texts and isinstance(texts[0], tuple):  # multiple instance: k sentences per image, row-major
            batch["text_valid"] = torch.tensor([bool(t) for group in texts for t in group])
            texts = [t for group in texts for t in group]
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        if self.padding != "longest":
            tokens = pad_tokens(tokens, self.padding, self.max_length, self.tokenizer.pad_token_id)
        return {**batch, "input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


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
    """The training step of PAPER.md section 4 (plus, with `image_ssl_weight`, SLIP's image-only term)."""

    def __init__(self, model: ConVIRT, config: PretrainConfig) -> None:
        super().__init__(model, config)
        # discarded after training, as SimCLR's projection: only the image encoder carries over. Drawn
        # aside from the seeded stream, so data order and first views stay those of ConVIRT alone.
        self.ssl_head = None
        if config.image_ssl_weight > 0:
            with torch.random.fork_rng(devices=[]):
                self.ssl_head = torch.nn.Linear(model.image_encoder.out_dim, config.proj_dim)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """uint8 -> [0, 1] floats, and ConVIRT's augmentations batched on the training device."""
        images = batch["images"].float().div_(255.0)
        if not self.training:
            return {**batch, "images": images}
        views = {"images": augment_batch(self.augment, images)}
        if self.ssl_head is not None:
            views["images_b"] = augment_batch(self.augment, images)
        return {**batch, **views}

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
        groups = None
        if (self.config.same_exam_positives or self.config.normal_positives) and "groups" in batch:
            groups = self.gather(batch["groups"], sync_grads=False)
        owner = valid = None
        if "text_valid" in batch:  # k sentences per image, in image order on every rank
            valid = self.gather(batch["text_valid"].to(torch.uint8), sync_grads=False)
            owner = torch.arange(len(image_emb), device=image_emb.device).repeat_interleave(
                len(valid) // len(image_emb))
        if self.config.contrastive_group is not None:
            loss = grouped_convirt_loss(image_emb, text_emb, self.config.contrastive_group, self.config.tau,
                                        self.config.lam)
        else:
            loss = convirt_loss(image_emb, text_emb, self.config.tau, self.config.lam, groups=groups,
                                text_owner=owner, text_valid=valid)
        # the loss curve and its chance line stay the image-text loss's; the image term is logged beside
        self.record_loss(loss, len(batch["images"]), self.chance(len(batch["images"])))
        if self.ssl_head is None:
            return loss
        view_b = self.model.image_encoder(batch["images_b"])
        ssl = nt_xent_loss(self.gather(self.ssl_head(features)), self.gather(self.ssl_head(view_b)),
                           self.config.tau)
        self.log("train/image_ssl_loss", ssl, batch_size=len(batch["images"]))
        return loss + self.config.image_ssl_weight * ssl


def trainer_config(config: PretrainConfig) -> TrainerConfig:
    """The trainer settings with this stage's epochs, steps and seed."""
    return dataclasses.replace(config.trainer, max_epochs=config.epochs, max_steps=config.max_steps,
                               seed=config.seed)


def from_donor_exams(exam_ids: list[str], values: list, seed: int) -> list:
    """The shuffled-text control's derangement: every frame gets the value of another exam's frames.

    `values` holds one value per frame, the same for the frames of one exam (its sentences, or whether
    they read normal); the same seed gives every per-exam value the same donor.
    """
    by_exam = dict(zip(exam_ids, values, strict=True))
    exams = list(by_exam)
    if len(exams) < 2:
        raise InputError("shuffling texts across exams needs at least two exams", field="shuffle_texts")
    order = [exams[i] for i in np.random.default_rng(seed).permutation(len(exams))]
    donor = {exam: order[(i + 1) % len(order)] for i, exam in enumerate(order)}
    return [by_exam[donor[exam]] for exam in exam_ids]


def shuffled_texts(exam_ids: list[str], texts: list[list[str]], seed: int) -> list[list[str]]:
    """The shuffled-text control: every exam's frames get the sentences of another exam (a derangement)."""
    return [list(t) for t in from_donor_exams(exam_ids, texts, seed)]


def positive_groups(exam_ids: list[str], reads_normal: list[bool] | None, config: PretrainConfig,
                    ) -> np.ndarray:
    """One integer per frame: rows sharing one are positives of each other's texts in the loss.

    Each frame is its own group (ConVIRT), or its exam is (`same_exam_positives`); with
    `normal_positives` every frame whose sentences read normal joins one group. Under `shuffle_texts`
    the flag travels with the sentences, so the control's groups follow the texts it was given.
    """
    if config.same_exam_positives:
        codes = {exam: i for i, exam in enumerate(dict.fromkeys(exam_ids))}
        groups = np.array([codes[e] for e in exam_ids], dtype=np.int64)
    else:
        groups = np.arange(len(exam_ids), dtype=np.int64)
    if config.normal_positives:
        if reads_normal is None:
            raise InputError("normal_positives needs the pairs' 'reads_normal' column (rerun the pair stage)",
                             file="pairs", field="reads_normal")
        if config.shuffle_texts:
            reads_normal = from_donor_exams(exam_ids, list(reads_normal), config.seed)
        groups = np.where(np.asarray(reads_normal, dtype=bool), len(exam_ids), groups)
    return groups


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
    resume: bool = True,
    callbacks: list[L.Callback] | None = None,
) -> dict[str, Any]:
    """Pre-train on `pairs` (image_id, exam_id, texts), save the model under `out_dir`; returns a summary."""
    config = config or PretrainConfig()
    out_dir = Path(out_dir)
    if pairs.empty:
        raise InputError("no image-text pairs to pre-train on", field="pairs")
    if config.multiple_instance and config.max_sentences < 1:
        raise InputError(f"expected at least 1, got {config.max_sentences}", file="pretrain config",
                         field="max_sentences")
    if config.image_ssl_weight < 0:
        raise InputError(f"expected a weight >= 0, got {config.image_ssl_weight}", file="pretrain config",
                         field="image_ssl_weight")
    check_speed_settings(config)
    if tokenizer_dir is None and config.text.name == "tiny":
        raise InputError("the 'tiny' text encoder needs a retrained tokenizer", field="tokenizer")
    L.seed_everything(config.seed, workers=True, verbose=False)
    tokenizer = load_tokenizer(tokenizer_dir if tokenizer_dir is not None else config.text.name)
    train_pairs, heldout = split_heldout_exams(pairs, config.heldout_fraction, config.seed)
    exam_ids = pair_exam_ids(train_pairs)
    texts = [list(t) for t in train_pairs["texts"]]
    if config.shuffle_texts:
        texts = shuffled_texts(exam_ids, texts, config.seed)
    reads_normal = train_pairs["reads_normal"].tolist() if "reads_normal" in train_pairs.columns else None
    groups = positive_groups(exam_ids, reads_normal, config)  # before the frames: a missing column fails fast
    frames, _ = load_frames(dataset, config.image_size, image_ids=train_pairs["image_id"].tolist(),
                            workers=max(1, config.num_workers))
    data = PairDataset(frames, texts, config.sample_sentence, groups=groups,
                       max_sentences=config.max_sentences if config.multiple_instance else None)
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
               **loss_summary(losses, chance), "out_dir": str(out_dir)}
    if trainer.is_global_zero:
        model = standard_layout(module.model.cpu().eval())
        save_convirt(model, out_dir, {"pretrain": to_dict(config)})
        retrieval = recall.result if recall.result is not None else heldout_retrieval(model, dataset, heldout,
                                                                                         config)
        summary.update(record_diagnostics(out_dir, losses, chance, retrieval))
    log.info("pre-training done: %s", summary)
    return summary


def check_speed_settings(config: PretrainConfig) -> None:
    """Contrastive groups score plain pairs: refuse them with the loss variants that take other rows."""
    if config.contrastive_group is None:
        return
    if config.contrastive_group < 2:
        raise InputError(f"expected at least 2 pairs a group, got {config.contrastive_group}",
                         file="pretrain config", field="contrastive_group")
    variants = [name for name in ("multiple_instance", "same_exam_positives", "normal_positives")
                if getattr(config, name)]
    if variants or config.image_ssl_weight > 0:
        raise InputError(f"contrastive_group scores one text per frame; it cannot be combined with "
                         f"{', '.join(variants) or 'image_ssl_weight'}", file="pretrain config",
                         field="contrastive_group")


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
