"""The k-means path saves its fitted model, and that model alone reproduces the stage's assignments."""

import numpy as np
import pandas as pd
import pytest

from usconvirt.clustering import ClusterConfig, run_clustering
from usconvirt.clustering.frames import load_cluster_frames
from usconvirt.clustering.organ_model import load_organ_model
from usconvirt.data import load_dataset
from usconvirt.errors import InputError


@pytest.mark.parametrize("features", ["texture", "raw", "pca32"])
def test_saved_kmeans_model_reproduces_assignments(shapes_dataset, tmp_path, features):
    out = tmp_path / "cluster"
    ids = [f"e{e}_{i}" for e in range(20) for i in range(3)][5:]  # not all frames, not in file order
    config = ClusterConfig(clusters=6, image_size=32, features=features, candidates=())
    run_clustering(shapes_dataset, out, config, image_ids=ids[::-1])
    assignments = pd.read_csv(out / "assignments.csv")
    model = load_organ_model(out)  # the cluster directory or its organ_model/ both work
    assert model.recipe.kind == features and model.clusters == 6
    frames, _ = load_cluster_frames(load_dataset(shapes_dataset), 32, assignments["image_id"].tolist())
    clusters, confidence = model.assign(frames)
    np.testing.assert_array_equal(clusters, assignments["cluster"].to_numpy())
    np.testing.assert_allclose(confidence, assignments["confidence"], atol=1e-4)
    assert len(set(clusters)) > 1 and model.probabilities(frames).shape == (len(frames), 6)
    with pytest.raises(ValueError, match="32, 32"):
        model.assign(frames[:, :16, :16])


def test_a_run_without_a_saved_model_says_to_rerun(tmp_path):
    with pytest.raises(InputError, match="rerun the cluster stage"):
        load_organ_model(tmp_path)
