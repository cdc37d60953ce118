"""State of the running pipeline stage that the trainer needs, kept apart so neither imports the other."""

from __future__ import annotations

from contextvars import ContextVar

# The running stage's manifest key (config hash and input fingerprints): training binds its checkpoints
# to it, so a stage rerun on changed inputs never resumes a checkpoint made from the old ones.
current_stage_key: ContextVar[str | None] = ContextVar("current_stage_key", default=None)
