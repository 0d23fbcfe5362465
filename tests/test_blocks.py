"""Feature blocks beyond the seed's: colour spaces, texture, block weights and scalers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.feature import graycomatrix, graycoprops

from segclust.colour import colour_columns, hue_columns
from segclust.config import FeatureConfig, ScalerConfig
from segclust.features import feature_matrix, raw_features
from segclust.scaling import scale_columns
from segclust.texture import GLCM_NAMES, glcm_features, lbp_histogram, quantise


def bgr_image(seed: int = 0, shape: tuple[int, int] = (20, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def blocks(**weights: dict) -> FeatureConfig:
    return FeatureConfig.from_dict({"name": "test", "blocks": weights})


@pytest.mark.parametrize(
    ("space", "names"),
    [
        ("rgb", ["red", "green", "blue"]),
        ("hsv", ["hue_cos", "hue_sin", "saturation", "value"]),
        ("lab", ["L", "a", "b"]),
    ],
)
def test_colour_blocks_shapes_and_ranges(space, names):
    raw, got, _ = raw_features(bgr_image(), blocks(**{space: {}}))
    assert got == names and raw.shape == (600, len(names)) and raw.dtype == np.float32
    if space == "rgb":
        assert raw.min() >= 0 and raw.max() <= 1
    if space == "hsv":
        np.testing.assert_allclose(raw[:, 0] ** 2 + raw[:, 1] ** 2, 1, atol=1e-5)
        assert raw[:, 2:].min() >= 0 and raw[:, 2:].max() <= 1
    if space == "lab":
        assert 0 <= raw[:, 0].min() and raw[:, 0].max() <= 100.001


def test_rgb_is_in_rgb_order_from_opencvs_bgr():
    pixel = np.array([[[255, 0, 0]]], np.uint8)  # blue in OpenCV's BGR
    raw, _, _ = raw_features(pixel, blocks(rgb={}))
    assert raw.tolist() == [[0.0, 0.0, 1.0]]


def test_hue_is_an_angle_a_full_turn_changes_nothing():
    hue = np.array([0.0, 1.0, 90.0, 359.0])
    cos, sin = hue_columns(hue)
    cos_turned, sin_turned = hue_columns(hue + 360.0)
    np.testing.assert_allclose(cos, cos_turned, atol=1e-6)
    np.testing.assert_allclose(sin, sin_turned, atol=1e-6)
    # 359 and 1 degrees are neighbours: closer than 1 and 90
    near = np.hypot(cos[3] - cos[1], sin[3] - sin[1])
    assert near < np.hypot(cos[1] - cos[2], sin[1] - sin[2]) and near < 0.04


def test_lab_of_white_black_and_grey_input():
    pixels = np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]], np.float32)
    lab, _ = colour_columns(pixels, "lab")
    np.testing.assert_allclose(lab[:, 0], [100, 0], atol=0.01)
    np.testing.assert_allclose(lab[:, 1:], 0, atol=0.01)
    grey_lab, _ = colour_columns(np.full((3, 3), 0.5, np.float32), "lab")
    np.testing.assert_allclose(grey_lab[:, 1:], 0, atol=0.01)


def test_sixteen_bit_and_rgba_colour_give_the_eight_bit_colours():
    eight = bgr_image(1)
    sixteen = eight.astype(np.uint16) * 257
    rgba = np.dstack([eight, np.full(eight.shape[:2], 7, np.uint8)])
    a, _, _ = raw_features(eight, blocks(lab={}))
    b, _, _ = raw_features(sixteen, blocks(lab={}))
    c, _, _ = raw_features(rgba, blocks(lab={}))
    np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_array_equal(a, c)


def test_glcm_equals_scikit_image_on_every_interior_window():
    rng = np.random.default_rng(2)
    grey = np.clip(rng.normal(0.5, 0.2, (30, 36)) + np.linspace(0, 0.3, 36), 0, 1)
    levels, distance, window = 6, 2, 7
    features, names = glcm_features(
        grey.astype(np.float32), levels=levels, distance=distance, window=window
    )
    assert names == GLCM_NAMES
    features = features.reshape(30, 36, 5)
    q = quantise(grey, levels).astype(np.uint8)
    r = window // 2
    for y, x in [(10, 10), (15, 20), (12, 25)]:
        across = q[y - r : y + r + 1, x - r : x + r + 1 + distance]
        down = q[y - r : y + r + 1 + distance, x - r : x + r + 1]
        m_across = graycomatrix(across, [distance], [0], levels, symmetric=True, normed=True)
        m_down = graycomatrix(down, [distance], [np.pi / 2], levels, symmetric=True, normed=True)
        for k, prop in enumerate(["contrast", "dissimilarity", "homogeneity", "energy",
                                  "correlation"]):  # fmt: skip
            expected = (graycoprops(m_across, prop)[0, 0] + graycoprops(m_down, prop)[0, 0]) / 2
            assert features[y, x, k] == pytest.approx(expected, abs=1e-5), (prop, y, x)


def test_glcm_of_a_flat_image():
    features, _ = glcm_features(np.full((12, 12), 0.3, np.float32), window=5)
    contrast, dissimilarity, homogeneity, energy, correlation = features.T
    assert not contrast.any() and not dissimilarity.any()
    np.testing.assert_allclose([homogeneity, energy, correlation], 1.0, atol=1e-6)


def test_lbp_histogram_shares_sum_to_one_and_flat_areas_have_one_code():
    rng = np.random.default_rng(3)
    grey = np.full((30, 30), 0.5, np.float32)
    grey[:, 15:] = rng.uniform(0, 1, (30, 15))
    histogram, names = lbp_histogram(grey, points=8, radius=1, window=5)
    assert histogram.shape == (900, 10) and names[0] == "lbp_0" and names[-1] == "lbp_9"
    np.testing.assert_allclose(histogram.sum(axis=1), 1, atol=1e-5)
    flat = histogram.reshape(30, 30, 10)[10, 5]
    assert flat.max() == pytest.approx(1.0) and np.count_nonzero(flat) == 1
    textured = histogram.reshape(30, 30, 10)[10, 25]
    assert np.count_nonzero(textured) > 3


def test_block_weights_multiply_their_columns_after_scaling():
    image = bgr_image(4)
    plain, _ = feature_matrix(image, blocks(lab={}, xy={}), ScalerConfig("standard"))
    weighted, names = feature_matrix(
        image, blocks(lab={"weight": 2.0}, xy={"weight": 0.0}), ScalerConfig("standard")
    )
    assert names == ["L", "a", "b", "x", "y"]
    np.testing.assert_allclose(weighted[:, :3], 2 * plain[:, :3], rtol=1e-6)
    assert not weighted[:, 3:].any()


def test_robust_scaler_ignores_a_few_extreme_pixels():
    rng = np.random.default_rng(5)
    column = rng.normal(0, 1, (1000, 1))
    column[:5] = 1e4  # five dead pixels
    robust = scale_columns(column, ScalerConfig("robust"))
    standard = scale_columns(column, ScalerConfig("standard"))
    assert 0.6 < robust[5:].std() < 0.9  # inliers keep their spread (IQR of a normal: 1.35)
    assert standard[5:].std() < 0.05  # the outliers squash everyone else


def test_minmax_scaler_maps_every_column_to_unit_range():
    raw = np.random.default_rng(6).normal(3, 5, (500, 3))
    scaled = scale_columns(raw, ScalerConfig("minmax"))
    np.testing.assert_allclose(scaled.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(scaled.max(axis=0), 1, atol=1e-6)


@pytest.mark.parametrize("name", ["standard", "minmax", "robust"])
def test_block_scope_keeps_distances_within_a_block(name):
    rng = np.random.default_rng(7)
    raw = np.c_[rng.normal(0, [1, 10, 100], (400, 3)), rng.normal(0, 1, (400, 1))]
    spans = [slice(0, 3), slice(3, 4)]
    scaled = scale_columns(raw, ScalerConfig(name, scope="block"), spans)
    before = np.linalg.norm(raw[:50, :3] - raw[50:100, :3], axis=1)
    after = np.linalg.norm(scaled[:50, :3] - scaled[50:100, :3], axis=1)
    ratio = after / before
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)  # one scale for the block
    per_column = scale_columns(raw, ScalerConfig(name, scope="column"), spans)
    distorted = np.linalg.norm(per_column[:50, :3] - per_column[50:100, :3], axis=1) / before
    assert distorted.max() / distorted.min() > 2  # column scope changes the block's geometry


def test_block_scope_standard_gives_each_block_the_variance_of_one_column():
    rng = np.random.default_rng(8)
    raw = np.c_[rng.normal(0, 1, (2000, 1)), rng.uniform(0, 1, (2000, 10))]
    scaled = scale_columns(
        raw, ScalerConfig("standard", scope="block"), [slice(0, 1), slice(1, 11)]
    )
    assert scaled[:, :1].var(axis=0).sum() == pytest.approx(1.0, rel=1e-4)
    assert scaled[:, 1:].var(axis=0).sum() == pytest.approx(1.0, rel=1e-4)


def test_colour_features_compress_exactly_on_an_eight_bit_photo():
    from segclust.compression import compress_rows

    image = np.repeat(bgr_image(9, (8, 8)), 50, axis=0)  # 64 colours, each many times
    matrix, _ = feature_matrix(image, blocks(lab={}), ScalerConfig("standard"))
    found = compress_rows(matrix)
    assert found is not None and found.n_distinct <= 64
    np.testing.assert_array_equal(found.rows[found.inverse], matrix)
