import pytest
import torch

from usconvirt.clustering.model import ClusterModel
from usconvirt.errors import InputError
from usconvirt.models.config import ImageEncoderConfig


def test_cluster_model_holds_k_to_the_range_the_cluster_config_declares() -> None:
    model = ClusterModel(ImageEncoderConfig(arch="tiny"), 2)
    assert model(torch.rand(3, 1, 32, 32)).shape == (3, 2)
    with pytest.raises(InputError, match=r"cluster model, field 'clusters': expected at least 2, got 1"):
        ClusterModel(ImageEncoderConfig(arch="tiny"), 1)
