"""Progress that reaches a log file: a bar on a terminal, otherwise one log line a minute.

Under nohup or a batch scheduler a progress bar prints only its final state, so long loops (ingest,
the frame cache) log `done/total unit (pct), rate, time left` every `interval` seconds instead.
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

log = logging.getLogger("usconvirt.progress")


class ProgressReporter:
    """`advance(n)` after each unit of work; use as a context manager."""

    def __init__(self, label: str, total: int, unit: str, *, interval: float = 60.0,
                 terminal: bool | None = None) -> None:
        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.done = 0
        self._start = self._last = time.monotonic()
        self._bar = None

    def __enter__(self) -> ProgressReporter:
        if self.terminal:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._task, n)
            return
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._start, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({pct:.0f}%), "
                f"{rate:.1f} {self.unit}/s, {format_duration(left)} left")

    def __exit__(self, kind: type | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


def format_duration(seconds: float) -> str:
    """'1 h 02 min', '3 min 05 s', '12 s', or 'unknown'."""
    if seconds != seconds or seconds == float("inf"):
        return "unknown"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
