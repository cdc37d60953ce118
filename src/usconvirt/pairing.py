"""Image-text pairs for one organ (section 3.4 of the paper, Dadoun et al., ISBI 2023): each selected
frame gets all its exam's organ sentences.

That is the paper's pairing and the default. `match_laterality` narrows a frame's sentences to its side,
but only from what a real export holds: the `laterality` column of the images table (a side read from the
DICOM ImageLaterality/Laterality tags or from a burned-in annotation such as "REIN G"), never the `side`
column, which is a label (the synthetic corpus fills it from its ground truth).
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pandas as pd

from usconvirt.data.config import PairConfig
from usconvirt.data.dataset import Dataset, images_file
from usconvirt.errors import InputError
from usconvirt.io import read_table, require_columns, require_known

log = logging.getLogger(__name__)

FRAME_COLUMNS = ("image_id",)
SENTENCE_COLUMNS = ("exam_id", "start", "text", "organ", "laterality")
PAIR_COLUMNS = ("image_id", "exam_id", "laterality", "texts")
FRAME_LATERALITY = "laterality"  # images column from the export (DICOM tag or burned-in annotation)
LATERALITY_CODES = {"l": "left", "left": "left", "g": "left", "gauche": "left",
                    "r": "right", "right": "right", "d": "right", "droit": "right", "droite": "right",
                    "b": "both", "both": "both"}


def build_pairs(
    dataset: Dataset,
    frames: pd.DataFrame,
    sentences: pd.DataFrame,
    config: PairConfig | None = None,
    *,
    frames_source: str = "selected frames",
    sentences_source: str = "sentences",
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per kept frame (image_id, exam_id, laterality, texts) and the accounting of section 3.4."""
    config = config or PairConfig()
    require_columns(frames, FRAME_COLUMNS, frames_source)
    require_columns(sentences, SENTENCE_COLUMNS, sentences_source)
    if "organ" in frames:
        frames = frames[frames["organ"].astype(str) == config.organ]
    images = dataset.images.set_index("image_id")
    require_known(frames, "image_id", images.index, frames_source, what="image")
    selected = images.loc[frames["image_id"].drop_duplicates(), ["exam_id"]].reset_index()
    selected["laterality"] = frame_laterality(images, selected["image_id"], required=config.match_laterality,
                                              source=images_file(dataset))

    organ_sentences = sentences[sentences["organ"] == config.organ].sort_values(["exam_id", "start"])
    by_exam = {exam: list(zip(group["text"].astype(str), group["laterality"].astype(str), strict=True))
               for exam, group in organ_sentences.groupby("exam_id", sort=False)}
    selected["texts"] = [
        [text for text, laterality in by_exam.get(exam, [])
         if not config.match_laterality or _same_side(side, laterality)]
        for exam, side in zip(selected["exam_id"], selected["laterality"], strict=True)
    ]
    has_text = selected["texts"].map(len) > 0
    pairs = selected[has_text].reset_index(drop=True)[list(PAIR_COLUMNS)]
    accounting = {
        "frames_selected": len(selected),
        "frames_kept": len(pairs),
        "frames_without_text": int((~has_text).sum()),
        "exams": int(pairs["exam_id"].nunique()),
        "exams_with_organ_text": len(by_exam),
    }
    log.info("pairs: %s", accounting)
    return pairs, accounting


def frame_laterality(images: pd.DataFrame, image_ids: pd.Series, *, required: bool,
                     source: str | Path = "images") -> list[str]:
    """Each frame's exported side (left, right, both or ''), from DICOM codes (L, R, B) or words."""
    if FRAME_LATERALITY not in images.columns:
        if required:
            raise InputError("match_laterality needs an images 'laterality' column (from the DICOM "
                             "ImageLaterality tag or a burned-in annotation); 'side' is a label and is not "
                             "read", file=source, field=FRAME_LATERALITY)
        return [""] * len(image_ids)
    raw = images.loc[image_ids, FRAME_LATERALITY].fillna("").astype(str).str.strip().str.lower()
    return [LATERALITY_CODES.get(value, "") for value in raw]


def _same_side(frame_side: str, laterality: str) -> bool:
    """A sentence fits a frame unless both sides are known (left/right) and differ."""
    sides = ("left", "right")
    return frame_side not in sides or laterality not in sides or frame_side == laterality


def load_pairs(path, dataset: Dataset | None = None) -> pd.DataFrame:
    """Read pairs.parquet back, with `texts` as Python lists of strings; given the dataset whose frames
    they pair, an image it does not hold (pairs of another dataset) is refused here, by its row."""
    pairs = read_table(path)
    require_columns(pairs, ("image_id", "texts"), path)
    if dataset is not None:
        require_known(pairs, "image_id", dataset.images["image_id"], path, what="image")
    pairs = pairs.copy()
    pairs["texts"] = [_sentence_list(texts, path, row) for row, texts in enumerate(pairs["texts"], start=1)]
    for row, texts in enumerate(pairs["texts"], start=1):
        if not texts:
            raise InputError("a pair needs at least one sentence", file=path, row=row, field="texts")
    return pairs


def _sentence_list(texts, path, row: int) -> list[str]:
    """A row's sentences; CSV and JSONL give the list back as its text, which must not be read as one
    sentence per character."""
    if isinstance(texts, str):
        try:
            texts = ast.literal_eval(texts)
        except (ValueError, SyntaxError):
            texts = None
        if not isinstance(texts, list):
            raise InputError("expected a list of sentences", file=path, row=row, field="texts")
    return [str(t) for t in texts]
