import json

import pandas as pd
from typer.testing import CliRunner

from usconvirt.cli import app
from usconvirt.errors import InputError


def test_cluster_command_on_a_split_part(shapes_dataset, tmp_path):
    split = tmp_path / "split.csv"
    pd.DataFrame({"exam_id": [f"e{i}" for i in range(20)], "patient_id": [f"p{i}" for i in range(20)],
                  "part": ["pretrain"] * 10 + ["test"] * 10}).to_csv(split, index=False)
    config = tmp_path / "cluster.yaml"
    config.write_text("batch_size: 15\nencoder: {arch: tiny}\n"
                      "trainer: {progress_bar: false, accelerator: cpu}\n")
    out = tmp_path / "cluster"
    result = CliRunner().invoke(app, ["cluster", str(shapes_dataset), "--out", str(out), "--clusters", "3",
                                      "--epochs", "1", "--image-size", "32", "--split", str(split),
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "frames 30" in result.output
    assignments = pd.read_csv(out / "assignments.csv")
    assert assignments["image_id"].str.split("_").str[0].isin([f"e{i}" for i in range(10)]).all()
    # --clusters sets every candidate's K; the baseline keeps its own (capped by the 30 frames to 6)
    candidates = json.loads((out / "metrics.json").read_text())["baselines"]
    assert set(candidates) == {"pca32:6", "pca32:3", "robust:3", "texture:3"}


def test_cluster_command_rejects_unknown_organ(shapes_dataset, tmp_path):
    result = CliRunner().invoke(app, ["cluster", str(shapes_dataset), "--out", str(tmp_path / "c"),
                                      "--select", "heart"])
    assert isinstance(result.exception, InputError)  # main() prints it as one line and exits 2
    assert "select: expected one of" in str(result.exception) and "'heart'" in str(result.exception)


def test_cluster_command_out_of_any_name_reads_back_its_own_selection(shapes_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a ./cluster/selected.csv beside OUT must not be what the summary reads
    out = tmp_path / "organ_clusters"
    result = CliRunner().invoke(app, ["cluster", str(shapes_dataset), "--out", str(out), "--clusters", "3"])
    assert result.exit_code == 0, result.output
    kept = len(pd.read_csv(out / "selected.csv"))
    assert f"{kept} kept as kidney" in result.output
