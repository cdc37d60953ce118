"""Logging: INFO by default; report text and PHI are only ever logged at DEBUG."""

from __future__ import annotations

import logging
import os
import sys


def configure_logging(verbose: bool = False) -> None:
    if not sys.stderr.isatty():
        # a batch log (SLURM, nohup): transformers' weight-loading and saving bars would fill it with
        # carriage-return lines; read by huggingface_hub when transformers is first imported, after this
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    for noisy in ("lightning", "lightning.pytorch", "pytorch_lightning", "PIL", "matplotlib", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # quiet_pipeline_output may have raised it in this process: the level asked for now is the root's
    logging.getLogger("usconvirt").setLevel(logging.NOTSET)


def quiet_pipeline_output() -> None:
    """One line per stage: silence library chatter (Lightning's banners and hints, weight-loading bars).

    Called after the libraries are imported, since Lightning resets its logger level on import.
    """
    import warnings

    import lightning  # noqa: F401  (imported for its logger set-up, which this then overrides)
    import transformers

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "usconvirt"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for message in (".*smaller than the logging interval.*", ".*LeafSpec.*", ".*module\\(s\\) in eval mode.*",
                    ".*Experiment logs directory.*", ".*does not have many workers.*"):
        warnings.filterwarnings("ignore", message=message)
