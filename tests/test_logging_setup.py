import subprocess
import sys


def test_batch_logs_get_no_progress_bars():
    """With stderr not a terminal (a SLURM or nohup log), the CLI turns Hugging Face's progress bars off
    before transformers is imported, so loading a model writes no bar into the log."""
    code = ("import os; os.environ.pop('HF_HUB_DISABLE_PROGRESS_BARS', None)\n"
            "from usconvirt.logging_setup import configure_logging\n"
            "configure_logging()\n"
            "from transformers.utils import logging as hf\n"
            "print(hf.is_progress_bar_enabled())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_an_explicit_choice_is_kept():
    code = ("import os; os.environ['HF_HUB_DISABLE_PROGRESS_BARS'] = '0'\n"
            "from usconvirt.logging_setup import configure_logging\n"
            "configure_logging()\n"
            "from transformers.utils import logging as hf\n"
            "print(hf.is_progress_bar_enabled())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
