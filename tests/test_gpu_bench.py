"""bench/gpu_bench.py --smoke keeps working: every configuration row is written with its fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"


def test_smoke_run_writes_one_row_per_configuration(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    fields = {"section", "name", "batch", "samples_per_s", "ms_per_step", "host_ms_per_step", "peak_mem_gb",
              "syncs_per_step", "device"}
    assert all(fields <= set(r) for r in rows)
    assert all(r["samples_per_s"] > 0 for r in rows)
    assert {r["section"] for r in rows} == {"pretrain", "finetune", "predict"}
    names = [r["name"] for r in rows]
    assert any("contrastive_group" in n for n in names) and any("Lightning" in n for n in names)
    assert any("from DICOM" in n for n in names)
    assert "| section" in done.stdout  # the table
    # on the CPU, syncs are host reads: kornia's augmentations make some, the batched ones none
    first, batched = rows[0], rows[1]
    assert "baseline" in first["name"] and "batched" in batched["name"]
    assert first["syncs_per_step"] > batched["syncs_per_step"]
