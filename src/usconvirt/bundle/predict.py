"""`usconvirt predict BUNDLE INPUT --out OUT`: frames.csv and exams.csv for new exams.

Ids are pseudonymised exactly as `usconvirt ingest` does (keyed HMAC of StudyInstanceUID and
SOPInstanceUID), so a study predicted here and ingested later carries the same exam_id; raw ids are
written only to the --id-map file, which must lie outside OUT. Frames are decoded and preprocessed in
worker processes and scored in batches, so memory stays bounded by a few batches whatever the export size.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from usconvirt.bundle.evidence import EvidenceWriter
from usconvirt.bundle.load import Bundle
from usconvirt.bundle.review import write_review
from usconvirt.bundle.sources import Decoded, Job, decode, discover
from usconvirt.data.deid import check_key, file_handle, log_skipped_file, pseudonymise
from usconvirt.errors import InputError
from usconvirt.evaluation.exam_level import ExamRule, decide, unit_scores
from usconvirt.io import atomic_dir, atomic_path, write_table

log = logging.getLogger(__name__)

FRAME_COLUMNS = ("image_id", "exam_id", "organ", "organ_confidence", "side", "p_abnormal")
NO_KIDNEY = "no kidney frame"
ORGAN_SOURCES = ("model", "dataset")


@dataclass
class PredictConfig:
    key: str | None = None  # pseudonymisation key; needed for DICOM and image files, not for datasets
    strict: bool = False  # an unreadable file stops the run instead of being skipped
    organ_from: str = "model"  # model: the bundle's organ model; dataset: the images table's organ column
    device: str = "auto"
    batch_size: int | None = None  # default: 256 on a GPU, 64 on a CPU
    workers: int = 1  # decoding and preprocessing processes
    id_map: Path | None = None
    overwrite: bool = False
    progress: bool = False
    maps: bool = True  # Grad-CAM of every kidney frame (evidence.py)
    prompts: tuple[str, ...] = ()  # a similarity map and zero-shot score each (a bundle with a text model)
    review: bool = False  # OUT/review/index.html


@dataclass
class PredictSummary:
    files: int = 0
    ignored: int = 0
    skipped: list[str] = field(default_factory=list)  # relative paths: at DEBUG and in the id map only
    frames: int = 0
    exams: int = 0
    kidney_frames: int = 0
    abnormal_exams: int = 0
    exams_without_kidney: int = 0
    seconds: float = 0.0

    def line(self, out: Path) -> str:
        return (f"{out}: {self.exams} exams, {self.frames} frames ({self.kidney_frames} kidney) from "
                f"{self.files} files ({self.ignored} ignored, {len(self.skipped)} unreadable skipped); "
                f"{self.abnormal_exams} abnormal, {self.exams_without_kidney} without a kidney frame; "
                f"{self.seconds:.1f} s")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"unknown device '{name}'", field="device") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("no CUDA device is available", field="device")
    return device


def decoded_stream(jobs: list[Job], sizes: tuple[int, ...], workers: int) -> Iterator[Decoded]:
    """Decoded jobs in input order; in `workers` processes when there is enough work to share."""
    work = partial(decode, sizes=sizes)
    if workers <= 1 or len(jobs) < 2 * workers:
        yield from map(work, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(work, jobs, chunksize=max(1, min(16, len(jobs) // (8 * workers))))


def predict_input(bundle: Bundle, inputs: list[str | Path], out: str | Path,
                  config: PredictConfig | None = None) -> PredictSummary:
    """Score every frame of `inputs`, aggregate the exams, write OUT/frames.csv, exams.csv, summary.json."""
    config = config or PredictConfig()
    started = time.perf_counter()
    out = Path(out)
    _check_request(bundle, out, config)
    jobs, ignored = discover([Path(p) for p in inputs])
    if not jobs:
        raise InputError("no DICOM, image or dataset frame found", file=inputs[0] if inputs else None)
    key = _key_for(jobs, config.key)
    if config.organ_from == "dataset" and any(job.kind != "dataset" for job in jobs):
        raise InputError("--organ-from dataset needs dataset directories as input", field="organ_from")
    bundle.to(resolve_device(config.device))
    batch_size = config.batch_size or (256 if bundle.device.type == "cuda" else 64)
    workers = max(1, config.workers)

    summary = PredictSummary(files=len(jobs), ignored=ignored)
    with atomic_dir(out, overwrite=config.overwrite) as tmp:  # maps are written as the frames stream
        evidence = EvidenceWriter(bundle, tmp, maps=config.maps, prompts=tuple(config.prompts),
                                  thumbnails=config.review)
        rows, ids = _score_stream(bundle, jobs, key, config, evidence, summary, batch_size, workers)
        frames = pd.DataFrame(rows, columns=[*FRAME_COLUMNS, *evidence.columns])
        if frames.empty:
            raise InputError(f"no frame could be read ({len(summary.skipped)} files skipped)",
                             file=inputs[0])
        exams = exam_table(frames, bundle)
        summary.frames, summary.exams = len(frames), len(exams)
        summary.kidney_frames = int(exams["kidney_frames"].sum()) if len(exams) else 0
        summary.abnormal_exams = int((exams["prediction"] == "abnormal").sum())
        summary.exams_without_kidney = int((exams["prediction"] == NO_KIDNEY).sum())
        write_table(frames, tmp / "frames.csv")
        write_table(exams, tmp / "exams.csv")
        if config.review:
            write_review(tmp, frames, exams, bundle, list(config.prompts))
        summary.seconds = time.perf_counter() - started
        counts = vars(summary) | {"skipped": len(summary.skipped)}  # names go to the log only
        (tmp / "summary.json").write_text(json.dumps({**counts, "bundle_init": bundle.manifest.get("init"),
                                                      "rule": bundle.rule.to_dict(),
                                                      "prompts": list(config.prompts)}, indent=2))
    if config.id_map is not None:
        write_id_map(ids, Path(config.id_map))
    log.debug("predict: %s", summary.line(out))
    return summary


def _score_stream(bundle: Bundle, jobs: list[Job], key: bytes | None, config: PredictConfig,
                  evidence: EvidenceWriter, summary: PredictSummary, batch_size: int, workers: int,
                  ) -> tuple[list[dict[str, Any]], set[tuple[str, str, str, str]]]:
    """frames.csv rows of every readable frame, and the id map's rows; counts skipped and ignored files."""
    rows: list[dict[str, Any]] = []
    ids: set[tuple[str, str, str, str]] = set()
    batch = _Batch(bundle, evidence, model_organ=config.organ_from == "model")
    with _progress(config.progress, len(jobs)) as advance:
        for item in decoded_stream(jobs, batch.sizes, workers):
            advance()
            if item.no_image:
                summary.ignored += 1
                continue
            if item.error is None and item.job.kind == "dicom" and not item.study_uid:
                item.error = "no StudyInstanceUID: cannot group the frame into an exam"
            if item.error is not None:
                if config.strict:
                    raise InputError(item.error, file=item.job.rel)
                summary.skipped.append(item.job.rel)
                _log_skipped(item, key, ids)
                continue
            batch.add(_frame_ids(item, key, ids), item)
            if batch.size >= batch_size:
                rows.extend(batch.flush())
        rows.extend(batch.flush())
    return rows, ids


def _check_request(bundle: Bundle, out: Path, config: PredictConfig) -> None:
    """Refuse, before any work, what would fail at the end."""
    if config.organ_from not in ORGAN_SOURCES:
        raise InputError(f"expected one of {', '.join(ORGAN_SOURCES)}, got '{config.organ_from}'",
                         field="organ_from")
    if config.organ_from == "model" and bundle.organ_model is None:
        raise InputError("the bundle holds no organ model: use --organ-from dataset", file=bundle.root)
    if config.id_map is not None and Path(config.id_map).resolve().is_relative_to(out.resolve()):
        raise InputError("the id map holds raw identifiers: write it outside OUT", file=config.id_map,
                         field="id_map")
    if out.exists() and not config.overwrite and (not out.is_dir() or any(out.iterdir())):
        raise InputError("output directory exists and is not empty (use --overwrite)", file=out)
    if config.prompts and bundle.text_model is None:
        raise InputError("--prompt needs a bundle with the text model (usconvirt export --with-text)",
                         file=bundle.root, field="prompt")


class _Batch:
    """Frames waiting for the models; `flush` scores them and returns their frames.csv rows. The organ is
    the model's with `model_organ`, else the dataset's: a frame the table gives no organ is no kidney frame,
    as in the exam-level evaluation, never one the model fills in."""

    def __init__(self, bundle: Bundle, evidence: EvidenceWriter, *, model_organ: bool) -> None:
        self.bundle, self.evidence, self.model_organ = bundle, evidence, model_organ
        self.sizes = bundle.input_sizes(organs=model_organ)  # the organ model's only when it runs
        self.meta: list[dict[str, Any]] = []
        self.pixels: dict[int, list[np.ndarray]] = {s: [] for s in self.sizes}

    @property
    def size(self) -> int:
        return len(self.meta)

    def add(self, meta: list[dict[str, Any]], item: Decoded) -> None:
        self.meta.extend(meta)
        for s in self.sizes:
            self.pixels[s].append(item.pixels[s])

    def flush(self) -> list[dict[str, Any]]:
        if not self.meta:
            return []
        pixels = {s: np.concatenate(p) for s, p in self.pixels.items()}
        scores = self.bundle.score(pixels, organs=self.model_organ)
        rows = []
        for i, meta in enumerate(self.meta):
            row = {**meta, "p_abnormal": round(float(scores["p_abnormal"][i]), 6)}
            if self.model_organ:
                row["organ"] = scores["organ"][i]
                row["organ_confidence"] = round(float(scores["organ_confidence"][i]), 4)
            rows.append(row)
        kidney = np.array([row["organ"] == self.bundle.kidney_organ for row in rows])
        for row, extra in zip(rows, self.evidence.rows([r["image_id"] for r in rows], pixels, kidney),
                              strict=True):
            row.update(extra)
        self.meta, self.pixels = [], {s: [] for s in self.sizes}
        return rows


def _key_for(jobs: list[Job], key: str | None) -> bytes | None:
    if all(job.kind == "dataset" for job in jobs):
        return None  # a dataset's ids are pseudonyms already
    if not key:
        raise InputError("DICOM and image files need the pseudonymisation key: --key or USCONVIRT_DEID_KEY",
                         field="key")
    return check_key(key)


def _log_skipped(item: Decoded, key: bytes | None, ids: set[tuple[str, str, str, str]]) -> None:
    """Log a skipped file by its handle (a dataset's frame by its image id, a pseudonym already) and add
    the handle's path to the id map."""
    job = item.job
    handle = job.image_id if job.kind == "dataset" else file_handle(job.rel, key)
    if job.kind != "dataset":
        ids.add((handle, "file", "path", job.rel))
    log_skipped_file(log, handle, item.error or "", job.rel, job.path)


def _frame_ids(item: Decoded, key: bytes | None, ids: set[tuple[str, str, str, str]]) -> list[dict[str, Any]]:
    """frames.csv ids and given fields for each frame of a decoded job; adds its rows to the id map."""
    job = item.job
    if job.kind == "dataset":
        return [{"image_id": job.image_id, "exam_id": job.exam_id, "side": job.side, "organ": job.organ}]
    if job.kind == "dicom":  # as data/ingest.py names frames
        exam_id = pseudonymise(item.study_uid, key, "exam-")
        source = pseudonymise(item.sop_instance_uid or f"path:{job.rel}", key, "img-")
        ids.add((exam_id, "exam", "StudyInstanceUID", item.study_uid))
        if item.accession_number:
            ids.add((exam_id, "exam", "AccessionNumber", item.accession_number))
        uid = item.sop_instance_uid
        ids.add((source, "image", "SOPInstanceUID" if uid else "path", uid or job.rel))
    else:  # an image file: its folder is its exam (folder names may hold names: pseudonymised too)
        folder = Path(job.rel).parent.as_posix()
        exam_id = pseudonymise(f"dir:{folder}", key, "exam-")
        source = pseudonymise(f"path:{job.rel}", key, "img-")
        ids.add((exam_id, "exam", "folder", folder))
        ids.add((source, "image", "path", job.rel))
    return [{"image_id": f"{source}-{index:03d}", "exam_id": exam_id, "side": side, "organ": ""}
            for index, side in enumerate(item.sides)]


def write_id_map(rows: set[tuple[str, str, str, str]], path: Path) -> None:
    """pseudonym, kind, source_field, source_value, as `usconvirt ingest --id-map` writes it; mode 0600."""
    table = pd.DataFrame(sorted(rows), columns=["pseudonym", "kind", "source_field", "source_value"])
    with atomic_path(path) as tmp:
        tmp.chmod(0o600)
        table.to_csv(tmp, index=False)


def exam_table(frames: pd.DataFrame, bundle: Bundle) -> pd.DataFrame:
    """One row per exam: its kidney frames, aggregated p_abnormal and prediction, overall and per side."""
    rule = bundle.rule
    kidney = frames[frames["organ"] == bundle.kidney_organ].rename(columns={"p_abnormal": "prob_abnormal"})
    exams = frames.groupby("exam_id", sort=True).size().rename("frames").reset_index()
    scored = unit_scores(kidney, rule.aggregation).set_index("exam_id")
    exams["kidney_frames"] = exams["exam_id"].map(scored["frames"]).fillna(0).astype(int)
    exams["p_abnormal"] = exams["exam_id"].map(scored["score"]).round(6)
    exams["prediction"] = _predictions(exams["p_abnormal"], rule)
    known = kidney[kidney["side"].isin(["left", "right"])]
    sided = unit_scores(known, rule.aggregation, ("exam_id", "side")).set_index(["exam_id", "side"])
    has_side = exams["exam_id"].isin(set(known["exam_id"]))
    for side in ("left", "right"):
        keys = list(zip(exams["exam_id"], [side] * len(exams), strict=True))
        n = pd.Series([sided["frames"].get(k, 0) for k in keys], index=exams.index)
        p = pd.Series([sided["score"].get(k, np.nan) for k in keys], index=exams.index).round(6)
        exams[f"{side}_kidney_frames"] = n.where(has_side, pd.NA).astype("Int64")
        exams[f"{side}_p_abnormal"] = p
        exams[f"{side}_prediction"] = _predictions(p, rule).where(has_side, "")
    return exams


def _predictions(scores: pd.Series, rule: ExamRule) -> pd.Series:
    called = np.where(decide(scores.fillna(0.0), rule) == 1, "abnormal", "normal")
    called = pd.Series(called, index=scores.index)
    return called.where(scores.notna(), NO_KIDNEY)


class _progress:
    """A rich progress bar over the files on a terminal; nothing otherwise (the CLI prints one line)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self.bar = Progress(transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("predicting", total=self.total)
        return lambda: self.bar.advance(task)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0))))
