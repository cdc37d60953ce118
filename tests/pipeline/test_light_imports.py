"""What a config check and a user's own loop import: no training framework, no CLI, no NLP stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("lightning", "typer", "edsnlp")


def imported_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_models_and_losses_import_no_training_framework_cli_or_nlp_stack():
    loaded = imported_after("import usconvirt.models as m, usconvirt.losses as l\n"
                            "[getattr(m, n) for n in m.__all__]; [getattr(l, n) for n in l.__all__]")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_validating_a_pipeline_config_imports_no_framework_nor_model_library():
    loaded = imported_after("from usconvirt.pipeline_config import resolve_config, packaged_config, "
                            "validate_pipeline_config\n"
                            "for name in ('demo', 'paper'):\n"
                            "    validate_pipeline_config(resolve_config(packaged_config(name)))")
    assert not loaded & {*HEAVY, "transformers", "torch", "pandas"}, loaded


@pytest.mark.parametrize(("package", "names"), [
    ("usconvirt.models", ["ImageEncoder", "ImageEncoderConfig", "create_image_encoder", "image_encoder_from",
                          "TextEncoder", "create_text_encoder", "ConVIRT", "ConVIRTConfig", "create_convirt",
                          "load_convirt", "KidneyClassifier", "load_classifier"]),
    ("usconvirt.losses", ["convirt_loss", "nt_xent_loss", "generalized_cross_entropy",
                          "GeneralizedCrossEntropy", "ScheduledTruncatedGCE", "dirichlet_prior_loss"]),
])
def test_the_packages_export_their_public_names(package, names):
    import importlib

    module = importlib.import_module(package)
    assert set(names) <= set(module.__all__)
    assert all(callable(getattr(module, name)) for name in module.__all__)


def test_run_check_validates_only(tmp_path):
    from usconvirt.pipeline_config import packaged_config

    def check(text: str) -> subprocess.CompletedProcess:
        config = tmp_path / "c.yaml"
        config.write_text(text)
        return subprocess.run([sys.executable, "-m", "usconvirt", "run", str(config), "--check"],
                              capture_output=True, text=True, cwd=tmp_path)

    demo = packaged_config("demo").read_text()
    ok = check(demo)
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    bad = check(demo.replace("\nfinetune:\n", "\nfinetune:\n  epochz: 3\n", 1))
    assert bad.returncode == 2 and "epochz" in bad.stderr
    retired = check(demo.replace("\npretrain:\n", "\npretrain:\n  normal_positives: true\n", 1))
    lines = retired.stderr.strip().splitlines()
    assert retired.returncode == 2 and len(lines) == 1, retired.stderr
    assert "pretrain.normal_positives" in lines[0] and "experiment" in lines[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "c.yaml"]  # nothing written: no run directory
