"""Scores against scikit-learn, noise handling and the undefined cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segclust.metrics import cluster_metrics


def blobs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], n // 3)
    centres = np.array([[0, 0], [4, 0], [0, 4]], dtype=float)
    return centres[labels] + rng.normal(0, 0.7, (len(labels), 2)), labels


def test_exact_scores_equal_sklearn():
    x, labels = blobs()
    m = cluster_metrics(x, labels, max_exact=10_000)
    assert m["silhouette_method"] == "exact" and m["silhouette_sample_size"] == len(x)
    assert m["silhouette"] == pytest.approx(silhouette_score(x, labels), rel=1e-5)
    assert m["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(x, labels), rel=1e-5)
    assert m["davies_bouldin"] == pytest.approx(davies_bouldin_score(x, labels), rel=1e-5)
    assert m["n_clusters"] == 3 and m["noise_fraction"] == 0.0


def test_noise_is_excluded_from_every_score():
    x, labels = blobs()
    noisy = labels.copy()
    noisy[::10] = -1
    keep = noisy != -1
    m = cluster_metrics(x, noisy, max_exact=10_000)
    assert m["noise_fraction"] == pytest.approx(0.1)
    assert m["silhouette"] == pytest.approx(silhouette_score(x[keep], noisy[keep]), rel=1e-5)


def test_sampled_silhouette_is_seeded_and_reports_its_error():
    x, labels = blobs(3000)
    a = cluster_metrics(x, labels, seed=1, max_exact=500, sample_size=400, reference_size=800)
    b = cluster_metrics(x, labels, seed=1, max_exact=500, sample_size=400, reference_size=800)
    c = cluster_metrics(x, labels, seed=2, max_exact=500, sample_size=400, reference_size=800)
    assert a == b
    assert a["silhouette_method"] == "sampled" and a["silhouette_sample_size"] == 400
    assert a["silhouette"] != c["silhouette"]
    assert 0 < a["silhouette_stderr"] < 0.02
    exact = silhouette_score(x, labels)
    assert abs(a["silhouette"] - exact) < 4 * a["silhouette_stderr"] + 0.005


def test_one_dimensional_features_are_exact_on_every_pixel():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(0, 1, 6000), 2).reshape(-1, 1)  # many repeated values
    labels = (x[:, 0] > 0.3).astype(int) + (x[:, 0] > 1.2)
    m = cluster_metrics(x, labels, max_exact=10)
    assert m["silhouette_method"] == "exact" and m["silhouette_sample_size"] == 6000
    assert m["silhouette_stderr"] == 0
    assert m["silhouette"] == pytest.approx(silhouette_score(x, labels), rel=1e-5)


def test_repeated_rows_are_exact_through_weights():
    rng = np.random.default_rng(4)
    rows = rng.integers(0, 6, size=(40, 2)).astype(float)
    x = rows[rng.integers(0, 40, size=4000)]  # 4000 pixels, at most 36 distinct rows
    labels = (x[:, 0] + x[:, 1] > 5).astype(int)
    m = cluster_metrics(x, labels, max_exact=100)
    assert m["silhouette_method"] == "exact" and m["silhouette_stderr"] == 0
    assert m["silhouette"] == pytest.approx(silhouette_score(x, labels), rel=1e-5)


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (np.zeros(50, int), "only 1 cluster"),
        (np.full(50, -1), "all 50 points are noise"),
        (np.arange(50), "50 clusters for 50 points"),
    ],
)
def test_degenerate_clusterings_give_null_and_a_reason(labels, reason):
    x = np.random.default_rng(0).normal(size=(50, 2))
    m = cluster_metrics(x, labels)
    assert m["silhouette"] is None and m["silhouette_method"] == "undefined"
    assert m["calinski_harabasz"] is None and m["davies_bouldin"] is None
    assert reason in m["undefined_reason"]


def test_label_count_mismatch_is_an_error():
    with pytest.raises(ValueError, match="labels for"):
        cluster_metrics(np.zeros((5, 1)), np.zeros(4, int))


def test_sample_as_large_as_the_data_is_reported_exact():
    x, labels = blobs(300)
    m = cluster_metrics(x, labels, max_exact=10, sample_size=1000, reference_size=50)
    assert m["silhouette_method"] == "exact" and m["silhouette_stderr"] == 0
    assert m["silhouette_sample_size"] == 300
    assert m["silhouette"] == pytest.approx(silhouette_score(x, labels), rel=1e-5)


@pytest.mark.parametrize("dims", [1, 3])
def test_weighted_calinski_harabasz_and_davies_bouldin_equal_sklearn_on_expanded_rows(dims):
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    from segclust.metrics import calinski_harabasz_davies_bouldin as both

    rng = np.random.default_rng(dims)
    rows = rng.normal(size=(60, dims))
    labels = rng.integers(0, 4, 60)
    counts = rng.integers(1, 9, 60)
    expanded, expanded_labels = np.repeat(rows, counts, axis=0), np.repeat(labels, counts)
    weighted = both(rows, labels, counts)
    assert weighted[0] == pytest.approx(
        calinski_harabasz_score(expanded, expanded_labels), rel=1e-9
    )
    assert weighted[1] == pytest.approx(davies_bouldin_score(expanded, expanded_labels), rel=1e-9)
    plain = both(rows.astype(np.float32), labels)
    assert plain[0] == pytest.approx(calinski_harabasz_score(rows, labels), rel=1e-5)
    assert plain[1] == pytest.approx(davies_bouldin_score(rows, labels), rel=1e-5)


def test_calinski_harabasz_of_clusters_on_single_points_is_sklearns_one():
    from sklearn.metrics import calinski_harabasz_score

    from segclust.metrics import calinski_harabasz_davies_bouldin as both

    rows = np.array([[0.0, 1.0], [0.0, 1.0], [5.0, 5.0], [5.0, 5.0]])
    labels = np.array([0, 0, 1, 1])
    assert both(rows, labels) == (calinski_harabasz_score(rows, labels), 0.0) == (1.0, 0.0)


def test_scores_of_repeated_rows_equal_sklearn_on_every_pixel_with_noise_and_gaps():
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    rng = np.random.default_rng(11)
    x = rng.integers(0, 5, (5000, 2)).astype(np.float32)
    labels = (x[:, 0] > 1).astype(int) * 7 + (x[:, 1] > 2) * 3  # labels 0, 3, 7, 10
    labels[:200] = -1
    keep = labels != -1
    m = cluster_metrics(x, labels, max_exact=100)
    assert m["n_clusters"] == 4 and m["silhouette_method"] == "exact"
    assert m["calinski_harabasz"] == pytest.approx(
        calinski_harabasz_score(x[keep], labels[keep]), rel=1e-5
    )
    assert m["davies_bouldin"] == pytest.approx(
        davies_bouldin_score(x[keep], labels[keep]), rel=1e-5
    )
    assert m["silhouette"] == pytest.approx(silhouette_score(x[keep], labels[keep]), rel=1e-5)


def test_davies_bouldin_in_row_blocks_equals_sklearn_with_many_clusters():
    from sklearn.metrics import davies_bouldin_score

    from segclust.metrics import _davies_bouldin_from, calinski_harabasz_davies_bouldin

    rng = np.random.default_rng(13)
    x = rng.normal(size=(3000, 3))
    labels = rng.integers(0, 700, 3000)
    labels = np.unique(labels, return_inverse=True)[1]
    _, db = calinski_harabasz_davies_bouldin(x, labels)
    assert db == pytest.approx(davies_bouldin_score(x, labels), rel=1e-9)
    k = labels.max() + 1
    sizes = np.bincount(labels)
    centroids = np.stack([np.bincount(labels, weights=x[:, j]) / sizes for j in range(3)], 1)
    within = np.bincount(labels, np.linalg.norm(x - centroids[labels], axis=1)) / sizes
    assert _davies_bouldin_from(centroids, within, block_rows=7) == pytest.approx(db, rel=1e-12)
    assert k > 600  # many clusters: the blocks of 7 rows cover them all


def test_silhouette_reference_stays_small_with_thousands_of_clusters():
    from segclust.silhouette import reference_counts

    rng = np.random.default_rng(14)
    totals = np.bincount(rng.integers(0, 5000, 60_000), minlength=5000)
    counts = reference_counts(totals, 2000)
    assert (counts <= totals).all() and (counts >= np.minimum(totals, 2)).all()
    assert counts.sum() <= 2000 + 3 * 5000  # proportional share + floor of 2, rounded up
    few = reference_counts(np.array([50_000, 30, 7]), 20_000)
    proportional = -(-20_000 * 50_000 // 50_037)  # ceil of its share of the reference
    assert few.tolist() == [proportional, 30, 7]  # small clusters whole


def _pairs_by_sorting(compression, labels):
    """The distinct (row, label) pairs the general way: one sort of a key per pixel."""
    n_labels = int(labels.max()) + 1
    keys = np.sort(compression.inverse.astype(np.int64) * n_labels + labels)
    first = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    pair_keys = keys[first]
    counts = np.diff(np.append(first, keys.size))
    return compression.rows[pair_keys // n_labels], pair_keys % n_labels, counts


@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("one_label_per_row", [True, False])
def test_pairs_of_clustered_rows_are_the_distinct_rows_in_sorted_order(noise, one_label_per_row):
    """Rows clustered as distinct rows skip the sort and give the same arrays; a row whose
    pixels have several labels, or noise that empties a row, take or shape the general way."""
    from segclust.compression import RowCompression, compress_rows
    from segclust.metrics import _weighted_pairs

    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, (4000, 2)).astype(np.float32)
    found = compress_rows(x, max_distinct_fraction=None)
    labels = rng.integers(0, 4, found.n_distinct)[found.inverse]
    if not one_label_per_row:
        labels[7] = (labels[7] + 1) % 4
    keep = np.ones(x.shape[0], dtype=bool)
    if noise:
        keep[found.inverse == 0] = False  # distinct row 0 has no pixel left
        keep[::5] = False
    kept = RowCompression(found.rows, found.inverse[keep], found.counts)
    got = _weighted_pairs(x[keep], labels[keep], kept)
    expected = _pairs_by_sorting(kept, labels[keep])
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype
        assert np.array_equal(a, b)
