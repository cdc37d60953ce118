"""The data stages' settings (split, pairing, augmentation), importable without pandas, torch or kornia."""

from __future__ import annotations

from dataclasses import dataclass, field

from usconvirt.config import NOT_NEGATIVE, SHARE
from usconvirt.errors import InputError
from usconvirt.text.organs import ORGANS

BACKENDS = ("kornia", "batched")  # augmentation backends: data/augment.py builds each


@dataclass
class AugmentConfig:
    """ConVIRT's published settings (Zhang et al., MLHC 2022); `blur_sigma` in pixels of a 224 px image."""

    # area fraction, not aspect ratio
    crop_scale: tuple[float, float] = field(default=(0.6, 1.0), metadata={"range": "(0, 1]"})
    hflip_p: float = field(default=0.5, metadata={"range": SHARE})
    rotation_deg: float = field(default=20.0, metadata={"range": NOT_NEGATIVE})
    translate: float = field(default=0.1, metadata={"range": SHARE})  # share of the image size
    affine_scale: tuple[float, float] = field(default=(0.95, 1.05), metadata={"range": "(0, inf)"})
    # multiplicative factor
    brightness: tuple[float, float] = field(default=(0.6, 1.4), metadata={"range": NOT_NEGATIVE})
    # blend factor towards the image mean
    contrast: tuple[float, float] = field(default=(0.6, 1.4), metadata={"range": NOT_NEGATIVE})
    blur_sigma: tuple[float, float] = field(default=(0.1, 3.0), metadata={"range": "(0, inf)"})
    blur_p: float = field(default=0.5, metadata={"range": SHARE})
    enabled: bool = True
    # kornia: its pipeline, which reads random draws back to the host (a few GPU syncs a batch);
    # batched: the same transforms with every draw on the device (batched_augment.py)
    backend: str = field(default="kornia", metadata={"choices": BACKENDS})


@dataclass
class SplitConfig:
    """Shares of the split; the paper: 1,051 labelled exams split 873/47/131, the other 6,960 pre-train."""

    # 1.0 for own data; below 1 gives a fully labelled (synthetic) corpus a pre-training pool.
    labeled_fraction: float = field(default=1.0, metadata={"range": "(0, 1]",
        "help": "Share of the labelled patients drawn into train/val/test; the others pre-train with their "
                "labels unused."})
    # train/val/test are relative weights within the labelled patients drawn
    train: float = field(default=0.83, metadata={"range": NOT_NEGATIVE, "help": "Relative weight of train."})
    val: float = field(default=0.045, metadata={"range": NOT_NEGATIVE,
                                                  "help": "Relative weight of validation."})
    test: float = field(default=0.125, metadata={"range": NOT_NEGATIVE, "help": "Relative weight of test."})
    seed: int = field(default=0, metadata={"help": "Key of the patient hash: another seed, another split."})
    strict: bool = field(default=False, metadata={
        "help": "A part of train/val/test without both classes is an error, not a warning."})
    # Exams the file does not list go to pretrain (excluded if their patient is in train/val/test).
    file: str | None = field(default=None, metadata={
        "help": "A team's own split (CSV/JSONL/Parquet: exam_id or patient_id, and part), validated; "
                "the shares and seed are then unused."})

    def check(self) -> None:
        """The weights are relative: any sum will do but zero."""
        if self.train + self.val + self.test <= 0:
            raise InputError("train + val + test must be > 0", field="train")


@dataclass
class PairConfig:
    """`match_laterality`: a frame whose exported laterality is left/right keeps only the sentences about
    that side (or both/unspecified); it reads `images.laterality`, never `images.side`."""

    organ: str = field(default="kidney", metadata={"choices": tuple(ORGANS)})  # as the sentences name it
    match_laterality: bool = False
