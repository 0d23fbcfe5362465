"""Region scores of a hierarchy's levels (segclust.levels) against cutting every level."""

from __future__ import annotations

import numpy as np
import pytest

from segclust.config import HierarchyConfig, SmoothingConfig
from segclust.evaluation import compare_to_annotators, contingency, table_scores
from segclust.hierarchy import Hierarchy, build_hierarchy, build_ucm
from segclust.levels import REGION_SCORES, merge_rows, region_ods_ois, region_scores_by_level


def direct_scores(hierarchy: Hierarchy, annotations, thresholds) -> np.ndarray:
    """Each level cut, relabelled and scored on its own."""
    return np.array(
        [
            [compare_to_annotators(hierarchy.cut(t), annotations)[n] for n in REGION_SCORES]
            for t in thresholds
        ]
    )


def noisy_photo(seed: int, shape=(36, 44)) -> np.ndarray:
    """Blocks of colour with noise: a hierarchy of many levels and regions of equal size."""
    rng = np.random.default_rng(seed)
    blocks = rng.random((4, 4, 3))[np.arange(shape[0]) * 4 // shape[0]][
        :, np.arange(shape[1]) * 4 // shape[1]
    ]
    return (blocks + rng.normal(0, 0.08, (*shape, 3))).clip(0, 1).astype(np.float32)


def annotations_for(seed: int, shape) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 100)
    y, x = np.mgrid[: shape[0], : shape[1]]
    out = [(y * k // shape[0]) * 10 + (x * (k + 1) // shape[1]) for k in (1, 2, 3)]
    out.append(rng.integers(0, 3, shape))  # a noisy annotator
    out.append(np.zeros(shape, int))  # one region
    return out


def thresholds_for(hierarchy: Hierarchy) -> np.ndarray:
    """Below the first merge, on and between merge heights, past the last; unsorted, with a
    repeat."""
    levels = hierarchy.levels
    picks = np.concatenate(
        [[levels[0] / 2], levels[:: max(1, levels.size // 8)], levels[-1:] * 2, levels[3:4]]
    )
    between = (levels[1:6] + levels[:5]) / 2
    return np.random.default_rng(0).permutation(np.concatenate([picks, between]))


@pytest.mark.parametrize("seed", range(4))
def test_level_scores_are_the_cut_scores_bit_for_bit(seed):
    photo = noisy_photo(seed)
    hierarchy = Hierarchy.from_ucm(
        build_ucm(photo, photo, HierarchyConfig(edges="gradient", leaf_area=6))
    )
    annotations = annotations_for(seed, photo.shape[:2])
    thresholds = thresholds_for(hierarchy)
    expected = direct_scores(hierarchy, annotations, thresholds)
    assert np.array_equal(region_scores_by_level(hierarchy, annotations, thresholds), expected)
    base, labels = hierarchy.nested_cuts(thresholds)
    assert labels.shape == (thresholds.size, base.max() + 1)
    for t, threshold in enumerate(thresholds):
        np.testing.assert_array_equal(labels[t][base], hierarchy.cut(threshold))


def test_levels_of_a_hierarchy_with_shared_leaves():
    # built at a working resolution: each leaf of the tree covers a block of pixels
    photo = (noisy_photo(7, (24, 32)) * 255).astype(np.uint8)
    big = np.repeat(np.repeat(photo, 3, axis=0), 3, axis=1)
    settings = HierarchyConfig(edges="gradient", leaf_area=5, max_pixels=24 * 32)
    hierarchy = build_hierarchy(big, SmoothingConfig(), settings)
    annotations = annotations_for(7, big.shape[:2])
    thresholds = thresholds_for(hierarchy)
    expected = direct_scores(hierarchy, annotations, thresholds)
    assert np.array_equal(region_scores_by_level(hierarchy, annotations, thresholds), expected)


def test_one_region_hierarchy_and_errors():
    flat = Hierarchy.from_ucm(np.zeros((2, 12, 15), np.float32))  # no tree at all
    annotations = annotations_for(1, (12, 15))
    thresholds = np.array([0.1, 0.0, 5.0])
    expected = direct_scores(flat, annotations, thresholds)
    assert np.array_equal(region_scores_by_level(flat, annotations, thresholds), expected)
    base, labels = flat.nested_cuts(thresholds)
    assert base.max() == 0 and labels.tolist() == [[0], [0], [0]]
    with pytest.raises(ValueError, match="no annotations"):
        region_scores_by_level(flat, [], thresholds)
    with pytest.raises(ValueError, match=r"annotation 0 has shape \(3, 3\)"):
        region_scores_by_level(flat, [np.zeros((3, 3), int)], thresholds)
    with pytest.raises(ValueError, match="no thresholds"):
        flat.nested_cuts(np.zeros(0))


@pytest.mark.parametrize("seed", range(5))
def test_merged_tables_score_as_the_merged_segmentation(seed):
    rng = np.random.default_rng(seed)
    shape = (30, 40)
    fine = rng.integers(0, 25, shape)
    fine[rng.random(shape) < 0.2] = -1  # noise is one more region
    annotations = [rng.integers(0, k, shape) for k in (1, 3, 9)]
    _, base = np.unique(fine, return_inverse=True)
    base = base.reshape(shape)
    merge = rng.permutation(rng.integers(0, 6, base.max() + 1))
    merge = np.unique(merge, return_inverse=True)[1]  # every coarse label used
    tables = [merge_rows(contingency(base, gt), merge) for gt in annotations]
    assert table_scores(tables) == compare_to_annotators(merge[base], annotations)
    # all noise: a single region
    noise = np.full(shape, -1)
    assert table_scores([contingency(noise, gt) for gt in annotations]) == compare_to_annotators(
        noise, annotations
    )


def test_ods_ois_of_level_scores():
    photo = noisy_photo(2)
    hierarchy = Hierarchy.from_ucm(
        build_ucm(photo, photo, HierarchyConfig(edges="gradient", leaf_area=6))
    )
    annotations = annotations_for(2, photo.shape[:2])
    thresholds = np.sort(thresholds_for(hierarchy))
    scores = np.stack([region_scores_by_level(hierarchy, annotations, thresholds)] * 2)
    summary = region_ods_ois(scores, thresholds)
    assert summary["ods"]["covering"] == summary["ois"]["covering"] == scores[0, :, 0].max()
    assert summary["ods"]["vi"] == scores[0, :, 2].min()
