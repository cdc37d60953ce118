"""Combine the shards of an ingest (`usconvirt ingest --shard I/N`) into one dataset.

The result is the dataset one unsharded run would have written: the same tables in the same order, the
same frames, the same counts in `ingest.json`. Frames are hard-linked when the shards sit on the same
file system (no copy), copied otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd

from usconvirt.data.ingest import EXAM_COLUMNS, SUMMARY_FILE, IngestSummary
from usconvirt.data.shard import parse_shard
from usconvirt.errors import InputError
from usconvirt.io import atomic_dir, atomic_path, read_table, write_table

log = logging.getLogger(__name__)

# Counts every shard sees whole (from the header pass over all files), taken once, not added up.
GLOBAL_COUNTS = ("files", "header_skipped", "reports_without_exam", "empty_reports", "labels_without_frame")


def merge_shards(shards: list[str | Path], out: str | Path, *, overwrite: bool = False) -> IngestSummary:
    """Merge shard datasets 0..N-1 of one ingest into `out`; a missing, repeated or foreign shard fails."""
    dirs = [Path(s) for s in shards]
    infos = [_read_info(d) for d in dirs]
    _check_complete(dirs, infos)
    exams = pd.concat([read_table(d / "exams.csv") for d in dirs], ignore_index=True)
    images = pd.concat([read_table(d / "images.csv") for d in dirs], ignore_index=True)
    order = {exam_id: i for i, exam_id in enumerate(sorted(exams["exam_id"]))}
    exams = exams.sort_values("exam_id", kind="stable", key=lambda c: c.map(order)).reset_index(drop=True)
    images = images.sort_values("exam_id", kind="stable", key=lambda c: c.map(order)).reset_index(drop=True)
    summary = _merged_summary([i["summary"] for i in infos])
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for d in dirs:
            _link_tree(d / "frames", tmp / "frames")
        write_table(exams[EXAM_COLUMNS], tmp / "exams.csv")
        write_table(images, tmp / "images.csv")
        with atomic_path(tmp / SUMMARY_FILE) as path:
            path.write_text(json.dumps({"summary": asdict(summary), "key_check": infos[0]["key_check"]},
                                       indent=1) + "\n", encoding="utf-8")
    log.info("merged %d shards into %s: %d exams, %d frames", len(dirs), out, summary.exams, summary.frames)
    return summary


def _read_info(directory: Path) -> dict:
    path = directory / SUMMARY_FILE
    if not path.is_file():
        raise InputError(f"no {SUMMARY_FILE}: not a dataset written by usconvirt ingest", file=directory)
    return json.loads(path.read_text(encoding="utf-8"))


def _check_complete(dirs: list[Path], infos: list[dict]) -> None:
    """Every shard of one N, once, all made with the same key from the same export."""
    shards = []
    for directory, info in zip(dirs, infos, strict=True):
        shard = parse_shard(info["summary"].get("shard") or None)
        if shard is None:
            raise InputError("not a shard (ingested without --shard)", file=directory)
        if info["key_check"] != infos[0]["key_check"]:
            raise InputError("ingested with another key than the first shard", file=directory)
        # every shard reads all headers, reports and labels: these counts differ only for another input,
        # e.g. a task rerun after the export grew
        differing = [k for k in GLOBAL_COUNTS if info["summary"][k] != infos[0]["summary"][k]]
        if differing:
            raise InputError(f"ingested another export, reports or labels than the first shard "
                             f"({', '.join(differing)} differ)", file=directory)
        shards.append(shard)
    counts = {s.count for s in shards}
    if len(counts) != 1:
        raise InputError(f"shards of different N given: {', '.join(map(str, shards))}")
    count = counts.pop()
    seen = [s.index for s in shards]
    missing = sorted(set(range(count)) - set(seen))
    repeated = sorted({i for i in seen if seen.count(i) > 1})
    if missing or repeated:
        raise InputError(f"shards of N={count}: missing {missing or 'none'}, repeated {repeated or 'none'}")


def _merged_summary(summaries: list[dict]) -> IngestSummary:
    merged = {}
    for f in fields(IngestSummary):
        if f.name == "shard":
            merged[f.name] = ""
        elif f.name in GLOBAL_COUNTS:
            merged[f.name] = summaries[0][f.name]
        elif f.name not in ("read", "skipped"):
            merged[f.name] = sum(s[f.name] for s in summaries)
    decode_skipped = sum(s["skipped"] - s["header_skipped"] for s in summaries)
    merged["skipped"] = merged["header_skipped"] + decode_skipped
    merged["read"] = merged["files"] - merged["skipped"]
    return IngestSummary(**merged)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) every file under `src` to the same place under `dst`."""
    if not src.is_dir():
        return
    for path in src.rglob("*"):
        if path.is_file():
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, target)
            except OSError:
                shutil.copy2(path, target)
