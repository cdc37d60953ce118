import pytest


@pytest.mark.parametrize(("preset", "bars"), [(None, "False"), ("0", "True")])
def test_batch_logs_get_no_progress_bars_unless_asked(preset, bars, new_process):
    """With stderr not a terminal (a SLURM or nohup log), the CLI turns Hugging Face's progress bars off
    before transformers is imported, so loading a model writes no bar into the log; a user's own
    HF_HUB_DISABLE_PROGRESS_BARS is kept."""
    setting = ("os.environ.pop('HF_HUB_DISABLE_PROGRESS_BARS', None)" if preset is None
               else f"os.environ['HF_HUB_DISABLE_PROGRESS_BARS'] = {preset!r}")
    code = (f"import os; {setting}\n"
            "from usconvirt.logging_setup import configure_logging\n"
            "configure_logging()\n"
            "from transformers.utils import logging as hf\n"
            "print(hf.is_progress_bar_enabled())")
    assert new_process(code).strip() == bars
