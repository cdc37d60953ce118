import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from usconvirt.clustering import ClusterConfig, run_clustering
from usconvirt.clustering.frames import load_cluster_frames
from usconvirt.clustering.module import ClusteringModule
from usconvirt.clustering.organ_model import load_organ_model
from usconvirt.data import load_dataset
from usconvirt.errors import InputError
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.training.trainer import TrainerConfig


def tiny_config(**overrides) -> ClusterConfig:
    trainer = overrides.pop("trainer", TrainerConfig(progress_bar=False, accelerator="cpu"))
    overrides = {"method": "deep", "min_steps": 20, "epochs": 10, "clusters": 3, "candidates": (),
                 **overrides}
    return ClusterConfig(image_size=32, batch_size=30, encoder=ImageEncoderConfig(arch="tiny"),
                         trainer=trainer, **overrides)


def test_end_to_end_separates_shapes_and_writes_outputs(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    metrics = run_clustering(shapes_dataset, out, ClusterConfig(clusters=3, image_size=32, candidates=()))

    assignments = pd.read_csv(out / "assignments.csv")
    assert list(assignments.columns) == ["image_id", "cluster", "confidence", "organ"]
    assert len(assignments) == 60 and assignments["confidence"].between(0, 1).all()
    selected = pd.read_csv(out / "selected.csv")
    assert (selected["organ"] == "kidney").all() and len(selected) == metrics["selected"]
    assert sorted(p.name for p in (out / "montages").iterdir()) == [f"cluster_{c:02d}.png" for c in range(3)]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert set(metrics["per_organ"]) == {"kidney", "liver", "bladder"}
    assert metrics["kidney_f1"] >= 0.9 and metrics["weighted_f1"] >= 0.9
    mapped = yaml.safe_load((out / "mapping.yaml").read_text())
    assert sorted(mapped.values()) == ["bladder", "kidney", "liver"]


def test_rerun_resumes_the_finished_checkpoint(shapes_dataset, tmp_path, monkeypatch):
    """Rerunning (for instance with --mapping) reuses the checkpoint: no step is trained again."""
    out = tmp_path / "cluster"
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu", max_steps=3, checkpoint_every_n_steps=1)
    first = run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    assert first["global_step"] == 3

    steps = []
    original = ClusteringModule.training_step
    monkeypatch.setattr(ClusteringModule, "training_step",
                        lambda self, batch, i: steps.append(i) or original(self, batch, i))
    second = run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    assert second["global_step"] == 3 and steps == []


def test_refuses_checkpoint_of_another_shape(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu", max_steps=1)
    run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    with pytest.raises(InputError, match="clusters"):
        run_clustering(shapes_dataset, out, ClusterConfig(
            method="deep", clusters=4, image_size=32, trainer=trainer,
            encoder=ImageEncoderConfig(arch="tiny")))


def test_mapping_file_names_clusters_without_labels(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("0: kidney\n1: liver\n")
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu", max_steps=1)
    run_clustering(shapes_dataset, out, tiny_config(trainer=trainer), mapping_file=mapping)
    assignments = pd.read_csv(out / "assignments.csv", keep_default_na=False)
    expected = assignments["cluster"].map({0: "kidney", 1: "liver", 2: ""})
    assert (assignments["organ"] == expected).all()


def test_unknown_image_ids_are_rejected(shapes_dataset, tmp_path):
    with pytest.raises(InputError, match="not in the dataset"):
        run_clustering(shapes_dataset, tmp_path / "c", tiny_config(), image_ids=["e0_0", "nope"])


def test_kmeans_default_chooses_a_candidate_on_the_mapping_exams_and_reports_all(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    metrics = run_clustering(shapes_dataset, out, ClusterConfig(image_size=32))
    assert metrics["method"] == "kmeans" and metrics["global_step"] == 0
    mapped, held = metrics["mapped_scores"]["labeled_frames"], metrics["labeled_frames"]
    assert mapped + held == 60 and 0 < held < mapped  # map on most exams, score on the rest
    assert metrics["headline"].startswith("held-out")
    table, chosen = metrics["baselines"], metrics["selection"]["chosen"]
    # 60 frames cap K at 12: the default candidates collapse to one per feature space
    assert set(table) == {"pca32:12", "robust:12", "texture:12"} and chosen == metrics["candidate"]
    assert [name for name, row in table.items() if row["chosen"] == "yes"] == [chosen]
    assert all(0 <= row["selection_score"] <= 1 and "kidney_f1" in row for row in table.values())
    # the candidates were scored on the mapping exams only: the held-out exams stay for the headline
    best = max(row["selection_score"] for row in table.values())
    assert table[chosen]["selection_score"] >= best - ClusterConfig().selection_margin
    assert metrics["kidney_f1"] >= 0.9 and metrics["warnings"] == []
    assert yaml.safe_load((out / "config.yaml").read_text())["features"] == chosen.split(":")[0]
    assignments = pd.read_csv(out / "assignments.csv")  # the saved chosen model reproduces them
    frames, _ = load_cluster_frames(load_dataset(shapes_dataset), 32, assignments["image_id"].tolist())
    assert (load_organ_model(out).assign(frames)[0] == assignments["cluster"]).all()
    assert not (out / "checkpoints").exists()


def test_without_labels_the_plain_pixel_baseline_is_used_and_said(shapes_dataset, tmp_path, caplog):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("0: kidney\n")
    root = tmp_path / "ds"
    shutil.copytree(shapes_dataset, root, ignore=shutil.ignore_patterns(".usconvirt-cache"))
    images = pd.read_csv(root / "images.csv", keep_default_na=False).assign(organ="")
    images.to_csv(root / "images.csv", index=False)
    with caplog.at_level("INFO", logger="usconvirt.clustering.run"):
        metrics = run_clustering(root, tmp_path / "c", ClusterConfig(image_size=32), mapping_file=mapping)
    assert metrics["candidate"] == "pca32:12" and metrics["selection"]["labels"] == "none"
    assert any("plain pixel-PCA baseline" in r.getMessage() for r in caplog.records)


def test_deep_schedule_has_a_step_floor_and_stops_when_stable(shapes_dataset, tmp_path):
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu")
    metrics = run_clustering(shapes_dataset, tmp_path / "c", tiny_config(
        trainer=trainer, epochs=1, min_steps=12, check_every_n_steps=4, stable_fraction=1.0, stable_checks=1))
    # 60 frames, batch capped at 30: one epoch is 2 steps, the floor makes it 12; all-stable stops there
    assert metrics["batch_size"] == 30 and metrics["global_step"] == 12
    assert {"pca32:12", "texture:3", "deep", "kmeans_encoder"} <= set(metrics["baselines"])


def test_labels_name_clusters_without_organs_and_no_labels_stop_with_one_line(shapes_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(shapes_dataset, root, ignore=shutil.ignore_patterns(".usconvirt-cache"))
    images = pd.read_csv(root / "images.csv", keep_default_na=False)
    kidney = images["image_id"].isin(images.loc[images.index % 3 == 0, "image_id"])
    images["organ"] = ""
    images.to_csv(root / "images.csv", index=False)
    with pytest.raises(InputError, match="montages"):
        run_clustering(root, tmp_path / "none", ClusterConfig(clusters=6, image_size=32))
    assert (tmp_path / "none" / "mapping.yaml").exists() and (tmp_path / "none" / "montages").is_dir()

    images["label"] = np.where(kidney, "normal", "")
    images.to_csv(root / "images.csv", index=False)
    metrics = run_clustering(root, tmp_path / "labels", ClusterConfig(clusters=6, image_size=32))
    assert metrics["mapping_source"].startswith("normal/abnormal")
    selected = pd.read_csv(tmp_path / "labels" / "selected.csv")
    assert set(selected["image_id"]) == set(images.loc[kidney, "image_id"])


def test_one_dominant_cluster_warns_and_strict_fails(shapes_dataset, tmp_path):
    config = ClusterConfig(clusters=6, image_size=32, max_cluster_share=0.1, candidates=())
    assert any("holds" in w for w in run_clustering(shapes_dataset, tmp_path / "a", config)["warnings"])
    with pytest.raises(InputError, match="failed its checks"):
        run_clustering(shapes_dataset, tmp_path / "b", replace(config, strict=True))


def test_the_pipeline_reruns_the_clustering_when_the_hand_written_mapping_changes(shapes_dataset, tmp_path,
                                                                                   monkeypatch):
    from usconvirt import stages

    root = tmp_path / "ds"
    shutil.copytree(shapes_dataset, root, ignore=shutil.ignore_patterns(".usconvirt-cache"))
    images = pd.read_csv(root / "images.csv", keep_default_na=False).assign(organ="")
    images.to_csv(root / "images.csv", index=False)
    run = tmp_path / "run"
    run.mkdir()
    exams = sorted(images["exam_id"].unique())
    pd.DataFrame({"exam_id": exams, "part": "pretrain"}).to_csv(run / "split.csv", index=False)
    monkeypatch.setattr(stages, "STAGES", [stages.CLUSTER])
    mapping = run / "cluster" / "mapping.yaml"
    config = {"dataset": str(root), "cluster": {"image_size": 32, "workers": 1},
              "cluster_mapping": str(mapping)}
    with pytest.raises(InputError, match="montages"):  # no labels: the montages and an unnamed mapping.yaml
        stages.run({**config, "cluster_mapping": None}, out=run)
    mapping.write_text("0: kidney\n")
    stages.run(config, out=run)
    assert set(pd.read_csv(run / "cluster" / "selected.csv")["cluster"]) == {0}
    mapping.write_text("0: kidney\n1: kidney\n")  # the user names one more cluster and reruns
    stages.run(config, out=run)
    assert set(pd.read_csv(run / "cluster" / "selected.csv")["cluster"]) == {0, 1}
    assert mapping.read_text() == "0: kidney\n1: kidney\n"


def test_a_bad_mapping_file_stops_the_stage_with_nothing_written(shapes_dataset, tmp_path):
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("3: rein\n")
    with pytest.raises(InputError, match=r"mapping.yaml, field '3': unknown organ 'rein'"):
        run_clustering(shapes_dataset, tmp_path / "c", ClusterConfig(image_size=32), mapping_file=mapping)
    assert not (tmp_path / "c").exists()
