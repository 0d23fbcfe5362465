"""k-means++ seeding: scikit-learn's centres bit for bit, without its float32 batches."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus

from segclust.seeding import KMeansPlusPlus


def rows(n: int, d: int, seed: int, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(5, d))
    return (centres[rng.integers(0, 5, n)] + rng.normal(size=(n, d))).astype(dtype)


def sklearn_batch(n_x: int, n_y: int, n_features: int) -> int:
    """The batch of scikit-learn's ``_euclidean_distances_upcast`` on dense rows."""
    maxmem = max(((n_x + n_y) * n_features + n_x * n_y) / 10, 10 * 2**17)
    tmp = 2 * n_features
    return max(int((-tmp + np.sqrt(tmp**2 + 4 * maxmem)) / 2), 1)


def one_row_last_batch(n_candidates: int) -> int:
    """The smallest row count whose last scikit-learn batch (for this many centres) has one row."""
    n = 2
    while n <= sklearn_batch(n_candidates, n, 3) or n % sklearn_batch(n_candidates, n, 3) != 1:
        n += 1
    return n


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("n", "d", "k"),
    [(500, 3, 4), (20_000, 3, 8), (7_000, 2, 2), (3_000, 5, 6), (one_row_last_batch(4), 3, 5)],
)
def test_centres_equal_scikit_learns_kmeans_plusplus(n, d, k, weighted):
    x = rows(n, d, seed=n + k)
    weight = np.random.default_rng(k).integers(1, 40, n).astype(np.float64) if weighted else None
    expected, _ = kmeans_plusplus(x, k, sample_weight=weight, random_state=np.random.RandomState(7))
    got = KMeansPlusPlus(weight)(x, k, random_state=np.random.RandomState(7))
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)


def test_the_one_row_last_batch_is_computed_as_scikit_learn_computes_it():
    """n rows where scikit-learn's last batch holds one row for the first centre (a 1x1
    product) and for the 2 + log k candidates (a matrix-vector product): the same bits as
    the one product here, as long as the BLAS sums exact products in the same order."""
    n = one_row_last_batch(1)
    assert n == one_row_last_batch(4)
    x = (100.0 + rows(n, 3, seed=1, dtype=np.float64)).astype(np.float32)
    for seed in range(5):
        expected, _ = kmeans_plusplus(x, 6, random_state=np.random.RandomState(seed))
        assert np.array_equal(KMeansPlusPlus()(x, 6, np.random.RandomState(seed)), expected)


def test_float64_rows_are_seeded_by_scikit_learn_itself():
    x = rows(2000, 3, seed=2, dtype=np.float64)
    expected, _ = kmeans_plusplus(x, 5, random_state=np.random.RandomState(0))
    assert np.array_equal(KMeansPlusPlus()(x, 5, np.random.RandomState(0)), expected)


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_fits_are_the_same_bits_with_every_start_seeded_here(weighted):
    x = rows(6000, 3, seed=4)
    weight = np.random.default_rng(1).integers(1, 9, 6000).astype(np.float64) if weighted else None
    plain = KMeans(5, n_init=4, random_state=3).fit(x, sample_weight=weight)
    seeded = KMeans(5, init=KMeansPlusPlus(weight), n_init=4, random_state=3)
    seeded.fit(x, sample_weight=weight)
    assert np.array_equal(seeded.labels_, plain.labels_)
    assert np.array_equal(seeded.cluster_centers_, plain.cluster_centers_)
    assert seeded.inertia_ == plain.inertia_


def test_the_registry_kmeans_equals_scikit_learns_on_distinct_rows():
    """cluster_features fits the distinct rows with their counts: the weights reach the seeding."""
    from segclust.clustering import cluster_features
    from segclust.compression import compress_rows
    from segclust.labels import relabel_by_size

    rng = np.random.default_rng(5)
    x = rng.integers(0, 12, (30_000, 3)).astype(np.float32) * 0.3
    found = compress_rows(x)
    params = {"n_clusters": 6, "n_init": 4, "max_iter": 300}
    result = cluster_features(x, "kmeans", params, seed=2, compression=found)
    plain = KMeans(6, n_init=4, max_iter=300, random_state=2)
    labels = plain.fit_predict(found.rows, sample_weight=found.counts.astype(np.float64))
    assert result.compressed
    assert np.array_equal(result.labels, relabel_by_size(labels.astype(np.int32)[found.inverse]))


def test_weights_must_match_the_rows():
    with pytest.raises(ValueError, match="3 weights for 10 rows"):
        KMeansPlusPlus(np.ones(3))(rows(10, 2, seed=0), 2, np.random.RandomState(0))
