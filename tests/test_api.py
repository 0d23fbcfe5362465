"""The notebook face, segment(): what users call from Python."""

from __future__ import annotations

import numpy as np
import pytest

from segclust import ConfigError, segment
from segclust.algorithms import ALGORITHMS
from segclust.hierarchy import CUTS
from tests.conftest import three_region_bgr, two_region_grey


@pytest.mark.parametrize("features", ["intensity", "intensity_xy"])
def test_two_halves_are_found(features):
    image = two_region_grey()
    blocks = {"intensity": {}, "xy": {"weight": 0.2}} if features == "intensity_xy" else features
    result = segment(image, features=blocks, algorithm="kmeans", n_clusters=2)
    assert result.labels.shape == image.shape and result.labels.dtype == np.int32
    assert result.metrics["n_clusters"] == 2 and result.metrics["silhouette"] > 0.5
    assert len(np.unique(result.labels[:, :16])) == 1


def test_colour_bands_with_each_algorithm():
    image = three_region_bgr()
    for algorithm, params in [
        ("kmeans", {"n_clusters": 3}),
        ("birch", {"n_clusters": 3}),
        ("dbscan", {"eps": 0.3, "min_samples": 5}),
    ]:
        result = segment(image, algorithm=algorithm, **params)
        assert result.metrics["algorithm"] == algorithm
        assert result.metrics["backend"] == "sklearn"
        assert result.labels.shape == image.shape[:2]


def test_sobel_features_segment_edges_from_flat_areas():
    image = two_region_grey()
    result = segment(image, features={"sobel": {"sigma": 1.0}}, n_clusters=2)
    assert result.feature_names == ["sobel_x", "sobel_y", "sobel_magnitude"]
    edge_cluster = result.labels[:, 15:17]
    flat_cluster = result.labels[:, :4]
    assert np.intersect1d(edge_cluster, flat_cluster).size < len(np.unique(result.labels))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": "spectral"}, f"allowed: {', '.join(ALGORITHMS)}"),
        (
            {"features": "hog"},
            "allowed: autoencoder, cnn, hsv, intensity, intensity_xy, lab, lab_texture",
        ),
        ({"n_clusters": 1}, "n_clusters must be an integer >= 2"),
        ({"algorithm": "dbscan", "eps": 0}, "eps must be a finite number > 0"),
        ({"algorithm": "dbscan", "min_samples": 0}, "min_samples must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        segment(two_region_grey(), **kwargs)


def test_flat_image_gives_undefined_scores_not_a_crash():
    result = segment(np.full((10, 10), 77, np.uint8), n_clusters=3)
    assert result.metrics["n_clusters"] == 1 and result.metrics["silhouette"] is None
    assert "only 1 cluster" in result.metrics["undefined_reason"]


def test_hierarchy_cut_becomes_the_segments():
    image = three_region_bgr()
    by_name = segment(image, features="lab", n_clusters=3, hierarchy="regions")
    assert by_name.segments.shape == image.shape[:2] and by_name.hierarchy is not None
    fine_leaves = {"cut": "regions", "leaf_area": 100}
    result = segment(image, features="lab", n_clusters=3, hierarchy=fine_leaves)
    wanted = CUTS["regions"].params["n_regions"].default  # = conf/hierarchy's n_regions
    leaves = len(np.unique(result.hierarchy.cut(0.0)))  # watershed leaves of ~100 px
    assert int(result.segments.max()) + 1 == min(wanted, leaves)
    finer = segment(image, hierarchy={"cut": "regions", "n_regions": 6, "leaf_area": 10})
    assert int(finer.segments.max()) + 1 == 6
    # the whole hierarchy comes back: any other level without rebuilding it
    three = result.hierarchy.cut_regions(3)  # the bands, up to the pixel on each boundary
    assert len(np.unique(three[:, :11])) == len(np.unique(three[:, 13:23])) == 1
    assert len(np.unique(three[:, 25:])) == 1 and len(np.unique(three[:, [5, 17, 30]])) == 3
    assert segment(image, n_clusters=3).hierarchy is None


def test_cluster_leaves_nest_in_the_clusters():
    image = three_region_bgr()
    result = segment(
        image,
        features="lab",
        n_clusters=6,
        hierarchy={"leaves": "clusters", "cut": "threshold", "threshold": 0.0},
    )
    # at height 0 nothing has merged: each segment lies inside one cluster
    for label in np.unique(result.segments):
        assert len(np.unique(result.labels[result.segments == label])) == 1


def test_bad_hierarchy_is_a_config_error():
    with pytest.raises(ConfigError, match=r"hierarchy\.cut: unknown value 'best'"):
        segment(two_region_grey(), hierarchy="best")
