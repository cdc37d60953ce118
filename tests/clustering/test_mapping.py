import numpy as np
import pytest
from PIL import Image

from usconvirt.clustering.mapping import (
    hungarian_mapping,
    kidney_mapping_from_labels,
    load_mapping,
    majority_mapping,
    mapping_from_labels,
    mapping_part,
    save_mapping,
)
from usconvirt.clustering.montage import montage, write_montages
from usconvirt.errors import InputError


def test_majority_vote_allows_several_clusters_per_organ():
    clusters = np.array([0, 0, 1, 1, 2, 3])
    organs = ["kidney", "kidney", "kidney", "liver", "liver", ""]
    assert majority_mapping(clusters, organs, 4) == {0: "kidney", 1: "kidney", 2: "liver", 3: ""}


def test_hungarian_is_one_to_one_and_auto_picks_it_when_k_equals_organs():
    # cluster 0 is mostly kidney but cluster 1 is all kidney: one-to-one pushes cluster 0 to liver
    clusters = np.array([0, 0, 0, 1, 1, 1, 1])
    organs = ["kidney", "kidney", "liver", "kidney", "kidney", "kidney", "kidney"]
    assert hungarian_mapping(clusters, organs, 2) == {0: "liver", 1: "kidney"}
    assert mapping_from_labels(clusters, organs, 2) == {0: "liver", 1: "kidney"}
    assert mapping_from_labels(clusters, organs, 3) == {0: "kidney", 1: "kidney", 2: ""}


def test_mapping_file_round_trip_and_errors(tmp_path):
    path = save_mapping({0: "kidney", 1: "", 2: "liver"}, tmp_path / "m.yaml")
    assert load_mapping(path, 3) == {0: "kidney", 1: "", 2: "liver"}
    (tmp_path / "bad.yaml").write_text("5: kidney\n")
    with pytest.raises(InputError, match="out of range"):
        load_mapping(tmp_path / "bad.yaml", 3)
    (tmp_path / "organ.yaml").write_text("0: heart\n")
    with pytest.raises(InputError, match="unknown organ"):
        load_mapping(tmp_path / "organ.yaml", 3)
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(InputError, match=r"empty\.yaml: maps no cluster"):
        load_mapping(tmp_path / "empty.yaml", 3)


def test_montage_grid_and_files(tmp_path):
    frames = np.stack([np.full((8, 8), i * 40, np.uint8) for i in range(6)])
    grid = montage(frames, columns=4, pad=2)
    assert grid.shape == (2 * 10 + 2, 4 * 10 + 2)
    assert grid[2, 2] == 0 and grid[2 + 10, 2] == 160  # row-major placement
    paths = write_montages(frames, np.array([0, 0, 0, 1, 1, 1]), np.linspace(0, 1, 6), 3, tmp_path)
    assert [p.name for p in paths] == ["cluster_00.png", "cluster_01.png", "cluster_02.png"]
    image = np.asarray(Image.open(paths[1]))
    assert image.shape[0] == 10 + 2 + 14  # one row of frames under a caption band
    assert (image[14:14 + 12, :32] == montage(frames[3:][::-1], columns=3)).all()
    assert (image[:14] < 128).any()  # the caption (cluster number) is drawn


def test_labels_name_kidney_clusters_and_exam_split_is_stable():
    clusters = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    labels = ["normal", "", "abnormal", "", "", "", "normal", ""]
    assert kidney_mapping_from_labels(clusters, labels, 4) == {0: "kidney", 1: "", 2: "kidney", 3: ""}
    with_absent = ["normal", "absent", "absent", "", "", "", "normal", ""]
    assert kidney_mapping_from_labels(clusters, with_absent, 3)[0] == ""
    exams = [f"e{i}" for i in range(200)]
    part = mapping_part(exams, 0.7)
    assert 0.55 < part.mean() < 0.85
    assert (mapping_part(exams + ["new1", "new2"], 0.7)[:200] == part).all()  # adding exams moves none


def test_unnamed_clusters_take_the_nearest_named_centroids_organ():
    from usconvirt.clustering.mapping import UNMAPPED, fill_unmapped

    centroids = np.array([[0.0, 0.0], [10.0, 0.0], [9.0, 1.0], [0.5, 0.5]], np.float32)
    mapping = {0: "kidney", 1: "liver", 2: UNMAPPED, 3: UNMAPPED}
    assert fill_unmapped(mapping, centroids) == {0: "kidney", 1: "liver", 2: "liver", 3: "kidney"}
    assert fill_unmapped(dict.fromkeys(range(4), UNMAPPED), centroids) == dict.fromkeys(range(4), UNMAPPED)
