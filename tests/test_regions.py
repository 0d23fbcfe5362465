"""Connected regions from cluster maps, and the smoothing applied before features."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segclust import segment
from segclust.config import ConfigError, FeatureConfig, RegionsConfig, ScalerConfig, SmoothingConfig
from segclust.features import feature_matrix
from segclust.regions import connected_regions, min_area_pixels
from segclust.smoothing import smooth_image
from tests.conftest import three_region_bgr, two_region_grey


def test_a_scattered_cluster_becomes_one_region_per_piece():
    labels = np.zeros((10, 12), np.int32)
    labels[1:4, 1:4] = 1  # two separate squares of the same cluster
    labels[6:9, 7:11] = 1
    regions = connected_regions(labels, min_area=1)
    assert regions.max() == 2  # background + two squares
    assert len(np.unique(regions[1:4, 1:4])) == 1 and len(np.unique(regions[6:9, 7:11])) == 1
    assert regions[2, 2] != regions[7, 8] != regions[0, 0]
    assert regions[0, 0] == 0  # the largest region comes first


def test_speckle_joins_the_region_around_it():
    labels = np.zeros((9, 9), np.int32)
    labels[4, 4] = 3  # one stray pixel of another cluster
    labels[0, :] = 2  # a strip of a third cluster, 9 pixels
    regions = connected_regions(labels, min_area=5)
    assert regions[4, 4] == regions[5, 5]
    assert regions.max() == 1 and len(np.unique(regions[0])) == 1


def test_every_region_reaches_min_area_and_kept_pieces_survive():
    rng = np.random.default_rng(3)
    blobs = ndimage.gaussian_filter(rng.normal(size=(80, 90)), 3)
    labels = np.digitize(blobs, np.quantile(blobs, [0.25, 0.5, 0.75])).astype(np.int32)
    labels[rng.random(labels.shape) < 0.02] = -1  # scattered noise
    min_area = 40
    regions = connected_regions(labels, min_area=min_area)
    sizes = np.bincount(regions.ravel())
    assert sizes.min() >= min_area and regions.min() == 0
    assert np.all(np.diff(sizes) <= 0), "regions are numbered by decreasing size"
    # a big piece of one cluster is inside exactly one region, and no two share one
    big = []
    for cluster in range(4):
        parts, count = ndimage.label(labels == cluster)
        counts = np.bincount(parts.ravel())
        big += [parts == i for i in range(1, count + 1) if counts[i] >= min_area]
    owners = [np.unique(regions[mask]) for mask in big]
    assert all(len(o) == 1 for o in owners)
    assert len({int(o[0]) for o in owners}) == len(big)


def test_noise_is_filled_and_all_noise_is_one_region():
    labels = np.full((6, 8), -1, np.int32)
    assert np.array_equal(connected_regions(labels, 3), np.zeros((6, 8), np.int32))
    labels[:, :4] = 0
    labels[:, 6:] = 1
    regions = connected_regions(labels, 1)
    assert regions.min() == 0
    assert np.all(regions[:, 4] == regions[0, 0]) and np.all(regions[:, 5] == regions[0, 7])


def test_without_a_piece_of_min_area_the_largest_is_kept():
    labels = np.zeros((4, 4), np.int32)
    labels[:, 3] = 1
    regions = connected_regions(labels, min_area=100)
    assert np.array_equal(regions, np.zeros((4, 4), np.int32))


def test_connectivity_decides_whether_diagonal_pixels_touch():
    labels = np.zeros((6, 6), np.int32)
    labels[:3, :3] = 1
    labels[3:, 3:] = 1  # touches the first square only at a corner
    four = connected_regions(labels, 1, connectivity=1)
    eight = connected_regions(labels, 1, connectivity=2)
    assert four[0, 0] != four[5, 5]
    assert eight[0, 0] == eight[5, 5]


def test_regions_do_not_depend_on_cluster_numbering():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(30, 30)).astype(np.int32)
    labels = ndimage.median_filter(labels, 5)
    permuted = np.array([2, 0, 3, 1], np.int32)[labels]
    assert np.array_equal(connected_regions(labels, 20), connected_regions(permuted, 20))


@pytest.mark.parametrize(
    ("labels", "kwargs", "message"),
    [
        (np.zeros(5, np.int32), {}, "H×W"),
        (np.zeros((3, 3), np.float32), {}, "integers"),
        (np.full((3, 3), -2, np.int32), {}, ">= -1"),
        (np.zeros((3, 3), np.int32), {"connectivity": 3}, "connectivity"),
        (np.zeros((3, 3), np.int32), {"min_area": 0}, "min_area"),
    ],
)
def test_bad_label_maps_are_refused(labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        connected_regions(labels, **{"min_area": 1, **kwargs})


def test_min_area_is_a_share_of_the_image():
    assert min_area_pixels(0.01, 154401) == 1544
    assert min_area_pixels(0.0, 100) == 1


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"method": "pieces"}, "regions.method"),
        ({"min_area_fraction": 1.0}, "< 1"),
        ({"min_area_fraction": -0.1}, "min_area_fraction"),
        ({"connectivity": 4}, "connectivity"),
        ({"size": 3}, "unknown key"),
    ],
)
def test_regions_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        RegionsConfig.from_dict(section)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"method": "blur"}, "smoothing.method"),
        ({"method": "meanshift", "sigma": 1.0}, "unknown key"),
        ({"method": "gaussian", "sigma": 0}, "smoothing.sigma"),
        ({"method": "bilateral", "diameter": 2.5}, "smoothing.diameter"),
        ({"method": "meanshift", "spatial_radius": 0}, "smoothing.spatial_radius"),
    ],
)
def test_smoothing_config_errors(section, message):
    with pytest.raises(ConfigError, match=message):
        SmoothingConfig.from_dict(section)


def _noisy_step(dtype=np.uint8, scale: int = 1) -> np.ndarray:
    rng = np.random.default_rng(5)
    image = np.full((40, 40, 3), 70.0)
    image[:, 20:] = 180.0
    image += rng.normal(0, 6, size=image.shape)
    return (image.clip(0, 255) * scale).astype(dtype)


def _edge_and_noise(image: np.ndarray) -> tuple[float, float]:
    grey = image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(float)
    return float(np.mean(grey[:, 20] - grey[:, 19])), float(grey[:, 5:15].std())


def test_none_leaves_the_photo_and_its_features_alone():
    image = three_region_bgr()
    assert smooth_image(image, SmoothingConfig()) is image
    features = FeatureConfig.from_dict({"name": "lab", "blocks": {"lab": {"weight": 1.0}}})
    a, _ = feature_matrix(image, features, ScalerConfig())
    b, _ = feature_matrix(smooth_image(image, SmoothingConfig()), features, ScalerConfig())
    assert a.tobytes() == b.tobytes()


def test_edge_preserving_filters_keep_the_step_that_a_blur_spreads():
    image = _noisy_step()
    edge_before, noise_before = _edge_and_noise(image)
    results = {}
    for method, params in (
        ("gaussian", {"sigma": 3.0}),
        ("bilateral", {"diameter": 9, "sigma_colour": 40.0, "sigma_space": 5.0}),
        ("meanshift", {"spatial_radius": 5, "colour_radius": 30.0}),
    ):
        out = smooth_image(image, SmoothingConfig(method, params))
        assert out.shape == image.shape and out.dtype == np.uint8
        results[method] = _edge_and_noise(out)
        assert results[method][1] < noise_before / 2, method  # every filter flattens noise
    assert results["gaussian"][0] < 0.6 * edge_before  # the blur spreads the step
    for method in ("bilateral", "meanshift"):
        assert results[method][0] > 0.9 * edge_before, method


@pytest.mark.parametrize("method", ["gaussian", "bilateral", "meanshift"])
def test_odd_modes_are_smoothed_in_their_own_layout(method):
    config = SmoothingConfig.from_dict({"method": method})
    grey = two_region_grey()
    out = smooth_image(grey, config)
    assert out.shape == grey.shape
    deep = _noisy_step(np.uint16, 257)
    out16 = smooth_image(deep, config)
    assert out16.shape == deep.shape
    rgba = np.dstack([_noisy_step(), np.full((40, 40), 255, np.uint8)])
    out_rgba = smooth_image(rgba, config)
    assert out_rgba.shape == (40, 40, 3)
    # the same picture at 8 and 16 bits smooths to the same colours (within 8-bit rounding)
    eight = smooth_image(_noisy_step(), config).astype(float)
    sixteen = out16.astype(float) / (257 if out16.dtype == np.uint16 else 1)
    if out16.dtype == np.float32:
        sixteen = out16 * 255.0
    assert np.abs(eight - sixteen).mean() < 1.5


def test_segment_gives_connected_segments_beside_the_clusters():
    image = three_region_bgr(60, 72)
    image[20:40, 5:15] = (40, 200, 40)  # a green patch inside the blue band: same cluster
    lab = {"lab": {"weight": 1.0}}
    plain = segment(image, lab, n_clusters=3)
    connected = segment(image, lab, regions="connected", smoothing="meanshift", n_clusters=3)
    assert np.array_equal(plain.segments, plain.labels)
    assert connected.labels.max() == 2
    assert connected.segments.max() == 3  # the patch is a region of its own
    assert len(np.unique(connected.segments[22:38, 7:13])) == 1
