"""Clustering: labels, compression on distinct rows, degenerate results."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score

from segclust.clustering import cluster_features, distinct_rows
from segclust.labels import relabel_by_size


def grey_levels(n: int = 3000, seed: int = 0) -> np.ndarray:
    """Three grey populations with heavy repetition, as 8-bit images have."""
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [
            rng.normal(40, 6, n // 3),
            rng.normal(120, 8, n // 3),
            rng.normal(210, 5, n - 2 * (n // 3)),
        ]
    )
    values = np.clip(np.round(values), 0, 255)
    return ((values - values.mean()) / values.std()).astype(np.float32).reshape(-1, 1)


def test_relabel_by_size_orders_clusters_and_keeps_noise():
    labels = np.array([5, 5, 2, -1, 2, 2, 7])
    assert relabel_by_size(labels).tolist() == [1, 1, 0, -1, 0, 0, 2]


def test_distinct_rows_round_trip():
    x = grey_levels()
    unique, inverse, counts = distinct_rows(x)
    np.testing.assert_array_equal(unique[inverse], x)
    assert counts.sum() == x.shape[0] and unique.shape[0] < x.shape[0]


def test_kmeans_compressed_has_the_same_objective_as_naive():
    x = grey_levels()
    unique, inverse, counts = distinct_rows(x)
    init = np.array([[-1.0], [0.0], [1.0]], dtype=np.float32)
    naive = KMeans(3, init=init, n_init=1).fit(x)
    weighted = KMeans(3, init=init, n_init=1).fit(unique, sample_weight=counts)
    np.testing.assert_allclose(weighted.inertia_, naive.inertia_, rtol=1e-5)
    np.testing.assert_allclose(weighted.cluster_centers_, naive.cluster_centers_, rtol=1e-5)
    assert adjusted_rand_score(naive.labels_, weighted.labels_[inverse]) == 1.0


def test_pipeline_kmeans_matches_naive_sklearn_labels():
    x = grey_levels()
    ours = cluster_features(x, "kmeans", {"n_clusters": 3, "n_init": 4, "max_iter": 300})
    assert ours.compressed
    naive = KMeans(3, n_init=4, random_state=0).fit_predict(x)
    assert adjusted_rand_score(naive, ours.labels) == 1.0


def test_dbscan_compressed_matches_naive_core_points():
    x = grey_levels()
    ours = cluster_features(x, "dbscan", {"eps": 0.05, "min_samples": 20})
    naive = DBSCAN(eps=0.05, min_samples=20).fit(x)
    assert ours.compressed
    core = np.zeros(len(x), bool)
    core[naive.core_sample_indices_] = True
    assert adjusted_rand_score(naive.labels_[core], ours.labels[core]) == 1.0
    np.testing.assert_array_equal(naive.labels_ == -1, ours.labels == -1)


def test_compression_can_be_forced_off():
    x = grey_levels()
    result = cluster_features(
        x, "kmeans", {"n_clusters": 3, "n_init": 1, "max_iter": 300}, compress=False
    )
    assert not result.compressed


def test_birch_never_compresses_and_labels_every_pixel():
    x = grey_levels(900)
    result = cluster_features(
        x, "birch", {"n_clusters": 3, "threshold": 0.3, "branching_factor": 50}
    )
    assert not result.compressed and result.backend == "sklearn"
    assert result.labels.shape == (900,) and set(np.unique(result.labels)) == {0, 1, 2}


def test_constant_input_gives_one_cluster_and_a_note():
    x = np.zeros((100, 1), np.float32)
    result = cluster_features(x, "kmeans", {"n_clusters": 3, "n_init": 1, "max_iter": 10})
    assert np.unique(result.labels).tolist() == [0]
    assert any("distinct" in note for note in result.notes)


def test_dbscan_tiny_eps_is_all_noise():
    x = np.linspace(0, 10, 200, dtype=np.float32).reshape(-1, 1)
    result = cluster_features(x, "dbscan", {"eps": 1e-4, "min_samples": 5})
    assert (result.labels == -1).all()


@pytest.mark.parametrize(
    "algorithm,params",
    [
        ("kmeans", {"n_clusters": 3, "n_init": 2, "max_iter": 300}),
        ("birch", {"n_clusters": 3, "threshold": 0.3, "branching_factor": 50}),
        ("dbscan", {"eps": 0.05, "min_samples": 20}),
    ],
)
def test_same_input_same_labels(algorithm, params):
    x = grey_levels()
    a = cluster_features(x, algorithm, params, seed=3).labels
    b = cluster_features(x, algorithm, params, seed=3).labels
    assert a.dtype == np.int32 and a.tobytes() == b.tobytes()


def test_continuous_dbscan_runs_on_the_grid_package_with_sklearns_core_and_noise():
    rng = np.random.default_rng(5)
    x = np.concatenate(
        [rng.normal(0, 0.3, (1500, 2)), rng.normal(3, 0.3, (1500, 2)), rng.uniform(-2, 5, (300, 2))]
    ).astype(np.float32)
    ours = cluster_features(x, "dbscan", {"eps": 0.2, "min_samples": 15})
    assert not ours.compressed
    assert "grid-based dbscan package" in "; ".join(ours.notes)
    naive = DBSCAN(eps=0.2, min_samples=15).fit(x)
    core = np.zeros(len(x), bool)
    core[naive.core_sample_indices_] = True
    np.testing.assert_array_equal(naive.labels_ == -1, ours.labels == -1)
    assert adjusted_rand_score(naive.labels_[core], ours.labels[core]) == 1.0


def test_large_birch_is_built_on_a_subsample_and_agrees_with_full_birch(monkeypatch):
    from sklearn.cluster import Birch

    import segclust.algorithms as algorithms

    monkeypatch.setattr(algorithms, "BIRCH_MAX_FIT_ROWS", 600)
    rng = np.random.default_rng(6)
    centres = np.array([[0, 0], [4, 0], [0, 4]], dtype=np.float32)
    x = (centres[rng.integers(0, 3, 3000)] + rng.normal(0, 0.5, (3000, 2))).astype(np.float32)
    params = {"n_clusters": 3, "threshold": 0.3, "branching_factor": 50}
    ours = cluster_features(x, "birch", params, seed=1)
    again = cluster_features(x, "birch", params, seed=1)
    assert ours.labels.tobytes() == again.labels.tobytes()
    assert any("subsample of 600 rows" in note for note in ours.notes)
    full = Birch(n_clusters=3, threshold=0.3).fit_predict(x)
    assert adjusted_rand_score(full, ours.labels) > 0.95


def test_large_kmeans_starts_from_a_subsample_and_matches_naive(monkeypatch):
    import segclust.algorithms as algorithms

    monkeypatch.setattr(algorithms, "KMEANS_INIT_ROWS", 600)
    rng = np.random.default_rng(8)
    centres = np.array([[0, 0, 0], [4, 0, 0], [0, 4, 0], [0, 0, 4]], dtype=np.float32)
    x = (centres[rng.integers(0, 4, 6000)] + rng.normal(0, 0.7, (6000, 3))).astype(np.float32)
    params = {"n_clusters": 4, "n_init": 3, "max_iter": 300}
    ours = cluster_features(x, "kmeans", params)
    assert not ours.compressed
    assert any("subsample of 600 rows" in note for note in ours.notes)
    naive = KMeans(4, n_init=3, random_state=0).fit(x)
    assert adjusted_rand_score(naive.labels_, ours.labels) >= 0.999


def test_compressed_metrics_reuse_the_clusterings_distinct_rows():
    from segclust.metrics import cluster_metrics

    rng = np.random.default_rng(9)
    x = rng.integers(0, 4, (4000, 2)).astype(np.float32)
    result = cluster_features(x, "kmeans", {"n_clusters": 3, "n_init": 2, "max_iter": 100})
    assert result.compressed and result.distinct_rows == 16
    reused = cluster_metrics(x, result.labels, compression=result.row_compression)
    assert reused == cluster_metrics(x, result.labels)
    assert reused["silhouette_method"] == "exact"
