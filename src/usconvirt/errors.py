"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations

import signal
from pathlib import Path

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad user input; the message names the file, row and field and says what was expected.

    `message` keeps the reason alone: a skipped file is logged by a pseudonym and that reason, since an
    export's folder and file names are often patient names (data/deid.py, `log_skipped_file`).
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message, self.file, self.row, self.field = message, file, row, field
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class Interrupted(BaseException):
    """SIGTERM or SIGINT reached a run: it ends with exit code 128 + signal, never as a success.

    A BaseException, as KeyboardInterrupt is: the signal handler raises it wherever the run is, and the
    `except Exception` that turns a corrupt DICOM into a skipped file must not turn a kill into one too.
    """

    def __init__(self, signum: int, stage: str | None = None, checkpoint: Path | None = None) -> None:
        self.signum, self.stage, self.checkpoint = signum, stage, checkpoint
        name = signal.Signals(signum).name
        where = f" during stage '{stage}'" if stage else ""
        resume = (f"; rerun the same command to resume from {checkpoint}" if checkpoint
                  else "; rerun the same command to resume")
        super().__init__(f"stopped by {name}{where}{resume}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def at(self, stage: str, checkpoint: Path | None) -> Interrupted:
        """The same interruption, naming the stage it hit (the innermost name wins)."""
        return Interrupted(self.signum, self.stage or stage, self.checkpoint or checkpoint)
