"""Feature sets: shapes, names, what the weights and scaler do."""

from __future__ import annotations

import numpy as np
import pytest

from segclust.config import FeatureConfig, ScalerConfig
from segclust.features import feature_matrix, raw_features, to_grey
from tests.conftest import two_region_grey

STANDARD = ScalerConfig("standard")


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("intensity", ["intensity"]),
        ("intensity_xy", ["intensity", "x", "y"]),
        ("sobel", ["sobel_x", "sobel_y", "sobel_magnitude"]),
    ],
)
def test_shapes_names_and_dtype(name, columns):
    grey = to_grey(two_region_grey(24, 32))
    matrix, names = feature_matrix(grey, FeatureConfig(name=name), STANDARD)
    assert names == columns
    assert matrix.shape == (24 * 32, len(columns))
    assert matrix.dtype == np.float32 and matrix.flags.c_contiguous


def test_standard_scaling_gives_zero_mean_unit_variance():
    grey = to_grey(two_region_grey())
    matrix, _ = feature_matrix(grey, FeatureConfig(name="intensity_xy"), STANDARD)
    np.testing.assert_allclose(matrix.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(matrix.std(axis=0), 1, atol=1e-4)


def test_xy_columns_follow_row_major_pixel_order():
    grey = to_grey(two_region_grey(5, 7))
    raw, _, _ = raw_features(grey, FeatureConfig(name="intensity_xy"))
    assert raw[8].tolist()[1:] == [1.0, 1.0]  # pixel 8 is row 1, column 1
    assert raw[6].tolist()[1:] == [6.0, 0.0]


@pytest.mark.parametrize("weight", [0.0, 0.5, 3.0])
def test_xy_weight_scales_only_the_coordinates_after_scaling(weight):
    grey = to_grey(two_region_grey())
    plain, _ = feature_matrix(grey, FeatureConfig(name="intensity_xy"), STANDARD)
    blocks = {"intensity": {"weight": 1.0}, "xy": {"weight": weight}}
    weighted, _ = feature_matrix(
        grey, FeatureConfig.from_dict({"name": "intensity_xy", "blocks": blocks}), STANDARD
    )
    np.testing.assert_allclose(weighted[:, 0], plain[:, 0])
    np.testing.assert_allclose(weighted[:, 1:], plain[:, 1:] * weight, atol=1e-6)


def test_sobel_responds_at_the_vertical_edge_only():
    grey = np.zeros((20, 20), np.float32)
    grey[:, 10:] = 1.0
    sobel = FeatureConfig.from_dict({"name": "sobel", "blocks": {"sobel": {"sigma": 0.0}}})
    raw, _, _ = raw_features(grey, sobel)
    gx = raw[:, 0].reshape(20, 20)
    gy = raw[:, 1].reshape(20, 20)
    assert np.abs(gy).max() == 0
    assert set(np.flatnonzero(np.abs(gx).max(axis=0))) == {9, 10}
    np.testing.assert_allclose(raw[:, 2], np.hypot(raw[:, 0], raw[:, 1]), rtol=1e-6)


def test_constant_image_scales_to_zeros_not_nan():
    grey = np.full((8, 8), 0.5, np.float32)
    matrix, _ = feature_matrix(grey, FeatureConfig(name="intensity"), STANDARD)
    assert np.isfinite(matrix).all() and not matrix.any()


def test_features_are_deterministic_to_the_byte():
    grey = to_grey(two_region_grey())
    a, _ = feature_matrix(grey, FeatureConfig(name="sobel"), STANDARD)
    b, _ = feature_matrix(grey, FeatureConfig(name="sobel"), STANDARD)
    assert a.tobytes() == b.tobytes()
