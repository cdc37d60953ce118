"""Data: the dataset format, image I/O, ultrasound preprocessing, ingest, splits, torch datasets."""

from usconvirt.data.dataset import ORGANS, Dataset, load_dataset

__all__ = ["ORGANS", "Dataset", "load_dataset"]
