"""Stable shards of a dataset: `--shard I/N` picks the studies whose pseudonymous id hashes to I.

The hash is of the *pseudonymous* exam id, so a shard's content depends on neither file order nor the
machine; the same id always lands in the same shard, and adding exams moves no existing one. Ingest, the
frame cache and the text stage can share it: every exam of a shard is processed by the same job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from usconvirt.errors import InputError


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based, as SLURM's `$SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)`)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, exam_id: str) -> bool:
        return shard_of(exam_id, self.count) == self.index


def shard_of(exam_id: str, count: int) -> int:
    """The shard (0 .. count-1) of a pseudonymous exam id."""
    return int(hashlib.sha256(exam_id.encode("utf-8")).hexdigest()[:15], 16) % count


def parse_shard(text: str | None) -> Shard | None:
    """'I/N' -> Shard(I, N); None stays None; anything else is an input error naming the field."""
    if text is None:
        return None
    index, sep, count = str(text).partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise InputError(f"expected I/N (e.g. 0/4), got '{text}'", field="shard")
    shard = Shard(int(index), int(count))
    if shard.count < 1 or not 0 <= shard.index < shard.count:
        raise InputError(f"shard index must be in 0..N-1 and N >= 1, got '{text}'", field="shard")
    return shard
