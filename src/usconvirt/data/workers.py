"""Process pools for the data stages (ingest, the frame cache): `map` in-process or over workers."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def process_map(workers: int, *, ordered: bool = False) -> Iterator:
    """`map` in this process (workers <= 1), else a pool's imap (ordered) or imap_unordered."""
    if workers <= 1:
        yield map
        return
    # fork where there is one: no `if __name__ == "__main__"` needed in the caller's script, and the
    # workers start at once (they only read files and run numpy; none of the parent's threads is used)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(workers, initializer=_worker_signals) as pool:
        yield pool.imap if ordered else pool.imap_unordered


def _worker_signals() -> None:
    """Signals as a pool worker needs them, whatever handlers the parent installed before forking.

    SIGTERM: the default (die), because Pool.terminate() stops its workers with it; a handler that raises
    instead (the CLI's, Lightning's) leaves a worker holding the task queue's lock and the pool hangs.
    SIGINT: ignored, since Ctrl-C reaches the whole process group; the parent stops the pool.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
