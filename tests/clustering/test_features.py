import numpy as np
import pytest

from usconvirt.clustering.baselines import feature_blocks, fit_features, lbp_histograms


def test_local_binary_patterns_ignore_gain_but_see_speckle_grain():
    rng = np.random.default_rng(0)
    fine = rng.integers(0, 100, (2, 32, 32)).astype(np.uint8)
    brighter = (2 * fine.astype(np.int64)).astype(np.uint8)  # gain: the same order of pixels
    np.testing.assert_array_equal(lbp_histograms(fine), lbp_histograms(brighter))
    gamma = (255 * (fine / 255.0) ** 0.5).round().astype(np.uint8)  # a grey map: only ties may move
    assert np.abs(lbp_histograms(gamma) - lbp_histograms(fine)).sum(1).max() < 0.2
    hist = lbp_histograms(fine)
    assert hist.shape == (2, 20)
    np.testing.assert_allclose(hist.sum(1), 2.0, atol=1e-5)  # one histogram per radius
    coarse = np.repeat(np.repeat(fine[:, :16, :16], 2, axis=1), 2, axis=2)  # grains of 2 x 2 px
    assert np.abs(lbp_histograms(coarse) - hist).sum() > 0.3


def test_texture_features_add_the_patterns_to_robust():
    frames = np.random.default_rng(1).integers(0, 255, (12, 32, 32)).astype(np.uint8)
    assert len(feature_blocks(frames, "texture", 1.0)) == len(feature_blocks(frames, "robust", 1.0)) + 1
    z, _ = fit_features(frames, None, "texture", dims=4)
    assert z.shape[0] == 12 and np.isfinite(z).all()
    with pytest.raises(ValueError, match="texture"):
        feature_blocks(frames, "lbp", 1.0)
