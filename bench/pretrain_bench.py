"""Samples/s of our Lightning pre-training step against a bare PyTorch loop with the same model, loss,
augmentations and batches; the last line is `ratio: X` (Lightning / bare, goal >= 0.9).

    python bench/pretrain_bench.py                 # CPU size: 'small' ResNet + tiny CamemBERT at 64 px
    python bench/pretrain_bench.py --paper         # ResNet50 + CamemBERT-base sizes (random) at 224 px, GPU
    python bench/pretrain_bench.py --paper --max-batch   # also the largest batch that fits
    python bench/pretrain_bench.py --paper --sweep --workers 8 [--compile]   # GPU: batch 32..512 x
        channels_last x bf16/fp32 (x torch.compile), samples/s and peak GPU memory of each, then the
        best setting with the real loader (tells whether the model or the data path is the limit)

Weights are random (no download); speed does not depend on them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from transformers import CamembertConfig, CamembertModel

from usconvirt.data.augment import augment_batch, build_augment
from usconvirt.losses.infonce import convirt_loss
from usconvirt.models.convirt import create_convirt, load_tokenizer
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.models.text_encoder import TextEncoderConfig
from usconvirt.text.tokenizer import train_tokenizer
from usconvirt.training.pretrain import ConVIRTModule, PairDataset, PretrainConfig, pair_loader

WORDS = ("rein droit gauche taille normale kyste cortical simple dilatation cavités pyélocalicielles "
         "échogénicité lithiase calcul pôle supérieur inférieur millimètres parenchyme").split()


def sentences(n: int, rng: np.random.Generator) -> list[list[str]]:
    """Report-like sentences of 8 to 30 words, 1 to 3 per pair."""
    return [[" ".join(rng.choice(WORDS, rng.integers(8, 31))).capitalize() + "."
             for _ in range(rng.integers(1, 4))] for _ in range(n)]


def text_encoder_dir(root: Path, texts: list[str], paper: bool) -> tuple[Path, TextEncoderConfig]:
    """A tokenizer (and for --paper a random CamemBERT-base-sized model beside it) under `root`."""
    tok_dir = root / "tokenizer"
    tok = train_tokenizer(texts, tok_dir, vocab_size=2000, min_frequency=1)
    if not paper:
        return tok_dir, TextEncoderConfig(name="tiny", freeze_embeddings=False, freeze_layers=0,
                                          max_length=64)
    model_dir = root / "camembert-base-random"
    CamembertModel(CamembertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                                   bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
                   add_pooling_layer=False).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)  # same vocabulary: no embedding resize
    return tok_dir, TextEncoderConfig(name=str(model_dir), max_length=128)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Wall time of the steps after `warmup`."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            sync(module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, module) -> None:
        sync(module.device)
        self.end = time.perf_counter()


def lightning_rate(module: ConVIRTModule, loader, config: PretrainConfig, warmup: int, steps: int) -> float:
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_steps=warmup + steps, accelerator="auto", devices=1,
                        precision=config.trainer.precision, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer])
    trainer.fit(module, train_dataloaders=loader)
    return steps * config.batch_size / (timer.end - timer.start)


def bare_rate(model, loader, config: PretrainConfig, device: torch.device, warmup: int, steps: int,
              channels_last: bool = False) -> float:
    """The same step written by hand: uint8 -> device, augment, forward, loss, backward, Adam."""
    model = model.to(device).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model.image_encoder.to(memory_format=torch.channels_last)
    augment = build_augment(config.augment, config.image_size).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                 weight_decay=config.weight_decay)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(config.trainer.precision)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)
    done, start = 0, 0.0
    while done < warmup + steps:
        for batch in loader:
            if done == warmup:
                sync(device)
                start = time.perf_counter()
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            images = augment_batch(augment, batch["images"].float().div_(255.0)).contiguous(
                memory_format=memory_format)
            autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
            with autocast:
                loss = convirt_loss(model.image_features(images),
                                    model.text_features(batch["input_ids"], batch["attention_mask"]),
                                    config.tau, config.lam)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            done += 1
            if done == warmup + steps:
                break
    sync(device)
    return steps * config.batch_size / (time.perf_counter() - start)


def largest_batch(model, data, tokenizer, config: PretrainConfig, device: torch.device) -> int:
    """Double the batch until a bare training step runs out of GPU memory."""
    fits, batch = 0, config.batch_size
    while batch <= len(data):
        try:
            cfg = dataclasses.replace(config, batch_size=batch)
            bare_rate(copy.deepcopy(model), pair_loader(data, tokenizer, cfg), cfg, device, 1, 1)
            fits, batch = batch, batch * 2
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
    return fits


def with_setting(config: PretrainConfig, batch: int, precision: str, workers: int) -> PretrainConfig:
    return dataclasses.replace(config, batch_size=batch, num_workers=workers,
                               trainer=dataclasses.replace(config.trainer, precision=precision))


def maybe_compiled(model, compiled: bool):
    model = copy.deepcopy(model)
    if compiled:
        model.image_encoder = torch.compile(model.image_encoder)
        model.text_encoder = torch.compile(model.text_encoder)
    return model


def sweep(model, data, tokenizer, config: PretrainConfig, device: torch.device, args) -> None:
    """Model-bound rate (one collated batch reused, no loader) for every setting; then the best setting
    fed by the real loader. GPU memory is the peak allocated by PyTorch during the setting."""
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    precisions = ["bf16-mixed", "32-true"] if bf16 else ["32-true"]
    print(f"{'batch':>5s} {'channels_last':>13s} {'precision':>10s} {'compile':>7s} {'samples/s':>10s} "
          f"{'GPU GB':>7s}", flush=True)
    results = []
    settings = itertools.product(args.batches, (False, True), precisions, (False, True) if args.compile
                                 else (False,))
    for batch, channels_last, precision, compiled in settings:
        cfg = with_setting(config, batch, precision, 0)
        one = next(iter(pair_loader(data, tokenizer, cfg)))
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            rate = bare_rate(maybe_compiled(model, compiled), [one] * (args.warmup + args.steps_sweep), cfg,
                             device, args.warmup, args.steps_sweep, channels_last=channels_last)
            memory = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
            results.append((rate, batch, channels_last, precision, compiled))
            shown = f"{rate:10.0f} {memory:7.1f}"
        except torch.OutOfMemoryError:
            shown = f"{'OOM':>10s} {'':>7s}"
        print(f"{batch:5d} {channels_last!s:>13s} {precision:>10s} {compiled!s:>7s} {shown}", flush=True)
    if not results:
        return
    rate, batch, channels_last, precision, compiled = max(results)
    cfg = with_setting(config, batch, precision, args.workers)
    fed = bare_rate(maybe_compiled(model, compiled), pair_loader(data, tokenizer, cfg), cfg, device,
                    args.warmup, args.steps_sweep, channels_last=channels_last)
    print(f"best: batch {batch}, channels_last={channels_last}, {precision}, compile={compiled}: "
          f"{rate:.0f} samples/s model-bound, {fed:.0f} samples/s with the loader ({args.workers} workers)"
          f" -> the {'loader' if fed < 0.9 * rate else 'model'} is the limit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="ResNet50 + CamemBERT-base sizes at 224 px")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternate bare/Lightning runs; best of each")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-batch", action="store_true", help="also search the largest batch (GPU)")
    parser.add_argument("--sweep", action="store_true", help="sweep batch x channels_last x precision")
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--compile", action="store_true", help="--sweep also with torch.compile")
    parser.add_argument("--steps-sweep", type=int, default=10, help="timed steps per sweep setting")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size, batch = (224, 32) if args.paper else (64, 16)
    batch = args.batch_size or batch
    steps = args.steps or (30 if args.paper else 10)
    rng = np.random.default_rng(0)
    n = 4096 if args.max_batch else batch * (args.warmup + steps)
    if args.sweep:
        n = max(n, max(args.batches) * (args.warmup + args.steps_sweep))
    texts = sentences(n, rng)
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir, text_cfg = text_encoder_dir(Path(tmp), [t for ts in texts for t in ts], args.paper)
        tokenizer = load_tokenizer(tok_dir)
        image_cfg = ImageEncoderConfig(arch="resnet50" if args.paper else "small", weights=None)
        precision = "bf16-mixed" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "32-true"
        config = PretrainConfig(image=image_cfg, text=text_cfg, batch_size=batch, image_size=size,
                                num_workers=args.workers, proj_dim=512 if args.paper else 64)
        config.trainer.precision = precision
        frames = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        data = PairDataset(frames, texts)
        L.seed_everything(0, verbose=False)
        model = create_convirt(config.model_config(), tokenizer)
        if args.sweep:
            sweep(model, data, tokenizer, config, device, args)
            return
        rates: dict[str, list[float]] = {"bare": [], "lightning": []}
        for _ in range(args.rounds):
            loader = pair_loader(data, tokenizer, config)
            rates["bare"].append(bare_rate(copy.deepcopy(model), loader, config, device, args.warmup, steps))
            module = ConVIRTModule(copy.deepcopy(model), config)
            rates["lightning"].append(lightning_rate(module, pair_loader(data, tokenizer, config), config,
                                                     args.warmup, steps))
        best = {k: max(v) for k, v in rates.items()}
        name = f"{image_cfg.arch} + {'camembert-base' if args.paper else 'tiny'} @ {size}px"
        print(f"{'setting':40s} {'device':8s} {'precision':11s} {'batch':>5s} {'bare/s':>9s} "
              f"{'lightning/s':>12s}")
        print(f"{name:40s} {device.type:8s} {precision:11s} {batch:5d} {best['bare']:9.1f} "
              f"{best['lightning']:12.1f}")
        if args.max_batch and device.type == "cuda":
            fits = largest_batch(model, data, tokenizer, config, device)
            print(f"largest batch that fits ({precision}, {size}px, of {len(data)} pairs): {fits}")
        print(f"ratio: {best['lightning'] / best['bare']:.3f}")


if __name__ == "__main__":
    main()
