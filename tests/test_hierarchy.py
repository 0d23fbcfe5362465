"""The region hierarchy: exact recovery, nesting, the stored UCM, the cut registry."""

from __future__ import annotations

import numpy as np
import pytest

from segclust.boundaries import boundary_map
from segclust.config import HierarchyConfig, SmoothingConfig
from segclust.errors import ConfigError
from segclust.evaluation import contingency
from segclust.hierarchy import (
    CUTS,
    Hierarchy,
    boundary_strength,
    build_hierarchy,
    build_ucm,
    cut_hierarchy,
    pixel_edge_weights,
    ultrametric_contour_map,
    watershed_leaves,
)
from tests.conftest import REPO_ROOT

COLOURS = np.array(
    [[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.9], [0.85, 0.85, 0.2]], dtype=np.float32
)


def quadrants(size: int = 48, noise: float = 0.03, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four flat colour quadrants with seeded noise (BGR in [0, 1]) and their true labels."""
    truth = np.zeros((size, size), np.int32)
    half = size // 2
    truth[:half, half:], truth[half:, :half], truth[half:, half:] = 1, 2, 3
    rng = np.random.default_rng(seed)
    image = COLOURS[truth] + rng.normal(0, noise, (size, size, 3)).astype(np.float32)
    return image.clip(0, 1), truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    table = contingency(a, b)
    return bool(((table > 0).sum(axis=0) == 1).all() and ((table > 0).sum(axis=1) == 1).all())


def noisy_hierarchy(seed: int = 3) -> Hierarchy:
    rng = np.random.default_rng(seed)
    image = rng.random((40, 56, 3)).astype(np.float32)
    return Hierarchy.from_ucm(
        build_ucm(image, image, HierarchyConfig(edges="gradient", leaf_area=8))
    )


@pytest.mark.parametrize("gradient_weight", [0.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_known_regions_are_one_level_of_the_hierarchy(gradient_weight, seed):
    """Exact, pixel for pixel. (A gradient weighted 4 or more moves the point where the four
    quadrants meet by a pixel or two: the Sobel response is strongest across the corner.)"""
    image, truth = quadrants(seed=seed)
    settings = HierarchyConfig(edges="gradient", leaf_area=20, gradient_weight=gradient_weight)
    ucm = build_ucm(image, image, settings)
    hierarchy = Hierarchy.from_ucm(ucm)
    cuts = [hierarchy.cut(t) for t in hierarchy.levels]
    assert any(same_partition(cut, truth) for cut in cuts)
    assert same_partition(hierarchy.cut_regions(4), truth)
    assert hierarchy.cut(hierarchy.levels[-1]).max() == 0  # the top: one region


def test_a_higher_threshold_nests_the_lower_one():
    hierarchy = noisy_hierarchy()
    levels = hierarchy.levels
    assert levels.size >= 5
    previous = None
    for t in (0.0, *levels[::2], levels[-1] + 1):
        cut = hierarchy.cut(t)
        if previous is not None:
            table = contingency(previous, cut)
            # every finer region lies inside exactly one coarser region
            assert ((table > 0).sum(axis=1) == 1).all()
            assert cut.max() <= previous.max()
        previous = cut


def test_the_ucm_is_ultrametric_on_every_edge():
    """An edge's height is where its two pixels first share a region: cut just below, they
    are apart; at the height, together."""
    hierarchy = noisy_hierarchy(seed=5)
    ucm = hierarchy.ucm
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(ucm[0, :, :-1] > 0)
    for i in rng.choice(rows.size, 20, replace=False):
        r, c = rows[i], cols[i]
        height = ucm[0, r, c]
        below, at = hierarchy.cut(np.nextafter(height, 0)), hierarchy.cut(height)
        assert below[r, c] != below[r, c + 1] and at[r, c] == at[r, c + 1]


def test_thresholded_strength_is_the_cuts_boundary_map():
    hierarchy = noisy_hierarchy()
    strength = boundary_strength(hierarchy.ucm)
    for t in hierarchy.levels[::3]:
        np.testing.assert_array_equal(strength > t, boundary_map(hierarchy.cut(t)))


def test_cluster_leaves_are_kept_as_connected_pieces():
    image, truth = quadrants()
    leaves = np.zeros_like(truth)
    leaves[:, ::6] = 1  # two labels in stripes: each stripe is a connected piece, so a leaf
    ucm = ultrametric_contour_map(
        pixel_edge_weights(image, image, gradient_sigma=1.0, gradient_weight=0.0), leaves
    )
    hierarchy = Hierarchy.from_ucm(ucm)
    finest = hierarchy.cut(0.0)  # pixels of one leaf join at height 0, leaves only above
    assert same_partition(
        finest, np.cumsum(np.r_[0, np.diff(leaves[0]) != 0])[None, :] + 0 * leaves
    )
    # the stripes cross the top/bottom border, so the best two regions are left and right
    assert same_partition(hierarchy.cut_regions(2), truth % 2)


def test_watershed_leaves_have_about_the_requested_area():
    rng = np.random.default_rng(1)
    image = rng.random((60, 60, 3)).astype(np.float32)
    edges = pixel_edge_weights(image, image, gradient_sigma=1.0, gradient_weight=4.0)
    small, large = watershed_leaves(edges, 10), watershed_leaves(edges, 200)
    assert np.unique(small).size > np.unique(large).size > 1
    assert np.bincount(np.unique(large, return_inverse=True)[1].ravel()).min() >= 200


def test_flat_image_gives_one_region_and_a_zero_ucm():
    flat = np.full((16, 20, 3), 0.5, np.float32)
    ucm = build_ucm(flat, flat, HierarchyConfig(edges="gradient"))
    assert not ucm.any()
    hierarchy = Hierarchy.from_ucm(ucm)
    assert hierarchy.cut(1.0).max() == 0 and hierarchy.cut_regions(5).max() == 0


def test_every_registered_cut_runs_and_the_relative_cut_ignores_contrast():
    hierarchy = noisy_hierarchy()
    for name in CUTS:
        labels = cut_hierarchy(
            hierarchy, HierarchyConfig.from_dict({"edges": "gradient", "cut": name})
        )
        assert labels.shape == hierarchy.shape and labels.min() == 0
    relative = HierarchyConfig.from_dict(
        {"edges": "gradient", "cut": "relative", "relative_threshold": 2.0}
    )
    middle = float(np.median(hierarchy.levels))
    fixed = HierarchyConfig.from_dict(
        {"edges": "gradient", "cut": "threshold", "threshold": middle}
    )
    doubled = Hierarchy.from_ucm(hierarchy.ucm * 2)
    # an internal criterion reads the image's own contrast: doubling every height changes nothing
    np.testing.assert_array_equal(
        cut_hierarchy(hierarchy, relative), cut_hierarchy(doubled, relative)
    )
    assert not np.array_equal(cut_hierarchy(hierarchy, fixed), cut_hierarchy(doubled, fixed))


def test_regions_cut_gives_the_requested_count():
    hierarchy = noisy_hierarchy()
    for n in (1, 2, 5):
        assert hierarchy.cut_regions(n).max() + 1 == n


def test_same_input_same_bytes():
    image, _ = quadrants(seed=4)
    settings = HierarchyConfig(edges="gradient")
    one = build_hierarchy((image * 255).astype(np.uint8), SmoothingConfig(), settings).ucm
    two = build_hierarchy((image * 255).astype(np.uint8), SmoothingConfig(), settings).ucm
    assert one.tobytes() == two.tobytes()


def test_sixteen_bit_grey_and_rgba_photos_work():
    image, truth = quadrants()
    grey16 = (image.mean(axis=2) * 65535).astype(np.uint16)
    rgba = np.dstack([(image * 255).astype(np.uint8), np.full(truth.shape, 255, np.uint8)])
    for photo in (grey16, rgba):
        ucm = build_hierarchy(
            photo, SmoothingConfig(), HierarchyConfig(edges="gradient", leaf_area=20)
        ).ucm
        assert ucm.shape == (2, *truth.shape) and ucm.any()


@pytest.mark.parametrize(
    ("given", "text"),
    [
        ({"cut": "median"}, "hierarchy.cut: unknown value 'median'; allowed: threshold"),
        ({"threshold": -1}, "hierarchy.threshold must be"),
        ({"n_regions": 0}, "hierarchy.n_regions must be an integer >= 1"),
        ({"relative_threshold": 0}, "hierarchy.relative_threshold must be"),
        ({"leaves": "slic"}, "hierarchy.leaves: unknown value 'slic'"),
        ({"leaf_area": 2.5}, "hierarchy.leaf_area must be an integer"),
        ({"thresold": 3}, "thresold"),
    ],
)
def test_bad_hierarchy_params_are_config_errors(given, text):
    with pytest.raises(ConfigError, match=None) as info:
        HierarchyConfig.from_dict(given)
    assert text in str(info.value)


def test_only_the_chosen_cuts_parameter_is_kept():
    config = HierarchyConfig.from_dict(
        {"edges": "gradient", "cut": "regions", "n_regions": 7, "threshold": 5.0}
    )
    assert config.cut_params == {"n_regions": 7}


def test_large_photos_are_built_at_the_working_resolution_and_cut_at_full_size():
    image, truth = quadrants(seed=2)
    big = np.repeat(np.repeat((image * 255).astype(np.uint8), 4, axis=0), 4, axis=1)
    big_truth = np.repeat(np.repeat(truth, 4, axis=0), 4, axis=1)
    settings = HierarchyConfig(
        edges="gradient", leaf_area=20, gradient_weight=2.0, max_pixels=48 * 48
    )
    hierarchy = build_hierarchy(big, SmoothingConfig(), settings)
    assert hierarchy.shape == big_truth.shape and hierarchy.ucm.shape == (2, 192, 192)
    assert same_partition(hierarchy.cut_regions(4), big_truth)
    # the same heights as the photo at the working size: thresholds keep their meaning
    small = build_hierarchy((image * 255).astype(np.uint8), SmoothingConfig(), settings)
    np.testing.assert_allclose(hierarchy.levels, small.levels, rtol=0.05)
    strength = boundary_strength(hierarchy.ucm)
    for t in hierarchy.levels:
        np.testing.assert_array_equal(strength > t, boundary_map(hierarchy.cut(t)))
        # the stored UCM rebuilds the same cuts
        assert same_partition(Hierarchy.from_ucm(hierarchy.ucm).cut(t), hierarchy.cut(t))


# --- learned edges: the hierarchy on a boundary probability map --------------------------------


def covering(labels: np.ndarray, truth: np.ndarray) -> float:
    from segclust.evaluation import segmentation_covering

    return segmentation_covering(labels, truth)


def soft_boundaries(truth: np.ndarray, seed: int = 0) -> np.ndarray:
    """A classifier-like probability map of ``truth``'s boundaries: blurred, with noise."""
    import cv2

    on = boundary_map(truth).astype(np.float32)
    blurred = cv2.GaussianBlur(on, (0, 0), 1.0)
    noise = np.random.default_rng(seed).uniform(0, 0.1, truth.shape).astype(np.float32)
    return np.clip(blurred / blurred.max() + noise, 0, 1)


@pytest.mark.parametrize("colour_weight", [0.0, 0.4])
def test_known_regions_are_one_level_of_the_learned_hierarchy(colour_weight):
    image, truth = quadrants(seed=5)
    settings = HierarchyConfig(edges="learned", leaf_area=20, colour_weight=colour_weight)
    photo = (image * 255).astype(np.uint8)
    hierarchy = build_hierarchy(photo, SmoothingConfig(), settings, None, soft_boundaries(truth))
    # the regions, up to the one-pixel ridge the watershed gives to one side or the other
    assert covering(hierarchy.cut_regions(4), truth) > 0.95
    assert hierarchy.cut(hierarchy.levels[-1]).max() == 0
    # heights are probabilities (mixed with colour / 100): a threshold in (0, 1) cuts them
    assert 0 < hierarchy.levels[0] and hierarchy.levels[-1] < 1.5


def test_learned_edges_build_at_the_maps_size_and_cut_at_the_photos():
    image, truth = quadrants(seed=6)
    big = np.repeat(np.repeat((image * 255).astype(np.uint8), 3, axis=0), 3, axis=1)
    settings = HierarchyConfig(edges="learned", leaf_area=20, colour_weight=0.0)
    hierarchy = build_hierarchy(big, SmoothingConfig(), settings, None, soft_boundaries(truth))
    assert hierarchy.shape == big.shape[:2]
    assert covering(hierarchy.cut_regions(4), np.repeat(np.repeat(truth, 3, 0), 3, 1)) > 0.95


def test_learned_edges_need_their_map():
    image, _ = quadrants()
    with pytest.raises(ValueError, match=r"edges=learned needs the learned boundary"):
        build_hierarchy(image, SmoothingConfig(), HierarchyConfig(edges="learned"))
    with pytest.raises(ConfigError, match=r"hierarchy\.edges: unknown value 'sobel'"):
        HierarchyConfig.from_dict({"edges": "sobel"})


@pytest.mark.parametrize("edges", ["learned", "gradient"])
@pytest.mark.parametrize("grey", [False, True])
def test_the_features_stages_smoothed_photo_gives_the_same_hierarchy(edges, grey):
    """The hierarchy stage reads the photo the features stage smoothed (a PNG) instead of
    smoothing it again: the same UCM bits as smoothing it here."""
    import cv2

    from segclust.smoothing import smooth_image
    from segclust.stages.features import smoothed_png

    photo = cv2.imread(str(REPO_ROOT / "data" / "samples" / "chelsea.png"))
    if grey:
        photo = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    smoothing = SmoothingConfig.from_dict({"method": "meanshift"})
    config = HierarchyConfig.from_dict({"edges": edges})
    probability = None
    if edges == "learned":
        probability = cv2.GaussianBlur(
            boundary_map(np.asarray(photo, np.int32) // 40 if grey else photo[:, :, 1] // 40)
            .astype(np.float32), (0, 0), 1.0
        )  # fmt: skip
    png = smoothed_png(photo, smooth_image(photo, smoothing))
    kept = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    again = build_hierarchy(photo, smoothing, config, None, probability)
    reused = build_hierarchy(photo, smoothing, config, None, probability, kept)
    assert np.array_equal(again.ucm, reused.ucm)
    assert again.levels.size > 2
