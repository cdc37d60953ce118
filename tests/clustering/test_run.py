import json

import pandas as pd
import pytest
import yaml

from usconvirt.clustering import ClusterConfig, run_clustering
from usconvirt.clustering.module import ClusteringModule
from usconvirt.errors import InputError
from usconvirt.models.image_encoder import ImageEncoderConfig
from usconvirt.training.trainer import TrainerConfig


def tiny_config(**overrides) -> ClusterConfig:
    trainer = overrides.pop("trainer", TrainerConfig(progress_bar=False, accelerator="cpu"))
    return ClusterConfig(clusters=3, epochs=10, image_size=32, batch_size=30,
                         encoder=ImageEncoderConfig(arch="tiny"), trainer=trainer, **overrides)


def test_end_to_end_separates_shapes_and_writes_outputs(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    metrics = run_clustering(shapes_dataset, out, tiny_config())

    assignments = pd.read_csv(out / "assignments.csv")
    assert list(assignments.columns) == ["image_id", "cluster", "confidence", "organ"]
    assert len(assignments) == 60 and assignments["confidence"].between(0, 1).all()
    selected = pd.read_csv(out / "selected.csv")
    assert (selected["organ"] == "kidney").all() and len(selected) == metrics["selected"]
    assert sorted(p.name for p in (out / "montages").iterdir()) == [f"cluster_{c:02d}.png" for c in range(3)]
    assert (out / "checkpoints" / "last.ckpt").exists()
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert set(metrics["per_organ"]) == {"kidney", "liver", "bladder"}
    assert metrics["kidney_f1"] >= 0.9 and metrics["weighted_f1"] >= 0.9
    mapped = yaml.safe_load((out / "mapping.yaml").read_text())
    assert sorted(mapped.values()) == ["bladder", "kidney", "liver"]


def test_resume_continues_from_last_checkpoint(shapes_dataset, tmp_path, monkeypatch):
    out = tmp_path / "cluster"
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu", max_steps=3, checkpoint_every_n_steps=1)
    first = run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    assert first["global_step"] == 3

    steps = []
    original = ClusteringModule.training_step
    monkeypatch.setattr(ClusteringModule, "training_step",
                        lambda self, batch, i: steps.append(i) or original(self, batch, i))
    trainer.max_steps = 5  # the "killed" run is restarted with a larger budget
    second = run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    assert second["global_step"] == 5
    assert len(steps) == 2  # only the missing steps ran


def test_refuses_checkpoint_of_another_shape(shapes_dataset, tmp_path):
    out = tmp_path / "cluster"
    trainer = TrainerConfig(progress_bar=False, accelerator="cpu", max_steps=1)
    run_clustering(shapes_dataset, out, tiny_config(trainer=trainer))
    with pytest.raises(InputError, match="clusters"):
        run_clustering(shapes_dataset, out, ClusterConfig(clusters=4, image_size=32, trainer=trainer,
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
