"""Silhouettes from distinct rows and counts against scikit-learn on the expanded points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import silhouette_samples, silhouette_score

import segclust.silhouette as sil
from segclust.silhouette import silhouette_1d, silhouette_sampled, weighted_silhouette


def expanded_score(rows: np.ndarray, counts: np.ndarray, labels: np.ndarray) -> float:
    """sklearn's silhouette with every pixel a row: the number the fast paths must reproduce."""
    return float(silhouette_score(np.repeat(rows, counts, axis=0), np.repeat(labels, counts)))


def integer_case(seed: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct integer-valued rows (sklearn's distances are then exact), counts with ones,
    a one-point cluster (total weight 1) and gaps in the label values."""
    rng = np.random.default_rng(seed)
    grid = rng.permutation(np.array(np.meshgrid(*[np.arange(-4, 5)] * d)).reshape(d, -1).T)
    m = min(45, len(grid))
    rows = grid[:m].astype(np.float64)
    counts = rng.integers(1, 6, m)
    counts[: m // 3] = 1
    labels = 2 * rng.integers(0, k - 1, m)  # k - 1 clusters with even ids ...
    labels[: k - 1] = 2 * np.arange(k - 1)  # ... all present
    labels[-1], counts[-1] = 99, 1  # ... plus one cluster holding a single pixel
    return rows, counts, labels


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_equals_sklearn_on_expanded_rows(seed: int, d: int, k: int) -> None:
    rows, counts, labels = integer_case(seed, d, k)
    assert len(np.unique(labels)) == k
    got = weighted_silhouette(rows, counts, labels)
    assert got == pytest.approx(expanded_score(rows, counts, labels), abs=1e-9)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_weighted_equals_sklearn_on_continuous_rows(seed: int) -> None:
    """Continuous rows: exact against sklearn on exact distances; sklearn's default Euclidean
    path (|x|²+|y|²-2x·y) puts ~1e-8 noise on duplicated rows, hence the looser second check."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(50, 3)) * 3 + 1
    counts = rng.integers(1, 6, 50)
    labels = rng.integers(0, 4, 50)
    x, lab = np.repeat(rows, counts, axis=0), np.repeat(labels, counts)
    got = weighted_silhouette(rows, counts, labels)
    assert got == pytest.approx(silhouette_score(cdist(x, x), lab, metric="precomputed"), abs=1e-12)
    assert got == pytest.approx(silhouette_score(x, lab), abs=1e-8)


def test_weighted_accepts_repeated_rows_and_float32() -> None:
    rows, counts, labels = integer_case(7, 2, 4)
    twice = np.vstack([rows, rows[:10]])
    twice_counts = np.concatenate([counts, np.full(10, 2)])
    twice_labels = np.concatenate([labels, labels[:10]])
    got = weighted_silhouette(twice, twice_counts, twice_labels)
    assert got == pytest.approx(expanded_score(twice, twice_counts, twice_labels), abs=1e-9)
    as_f32 = weighted_silhouette(rows.astype(np.float32), counts.astype(np.int32), labels)
    assert as_f32 == pytest.approx(expanded_score(rows, counts, labels), abs=1e-9)


@pytest.mark.parametrize("chunk_bytes", [8, 8 * 4, 8 * 49, 8 * 1000])
def test_weighted_does_not_depend_on_chunking(chunk_bytes: int) -> None:
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(120, 3))
    counts = rng.integers(1, 9, 120)
    labels = rng.integers(0, 5, 120)
    reference = weighted_silhouette(rows, counts, labels)
    assert weighted_silhouette(rows, counts, labels, chunk_bytes=chunk_bytes) == pytest.approx(
        reference, abs=1e-12
    )


def test_weighted_row_block_mode_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mode used when the M×k sums table is too big gives the same score."""
    rows, counts, labels = integer_case(5, 3, 6)
    symmetric = weighted_silhouette(rows, counts, labels, chunk_bytes=8 * 49)
    monkeypatch.setattr(sil, "_SUMS_TABLE_BYTES", 0)
    blocked = weighted_silhouette(rows, counts, labels, chunk_bytes=8 * 49)
    assert blocked == pytest.approx(symmetric, abs=1e-12)
    assert blocked == pytest.approx(expanded_score(rows, counts, labels), abs=1e-9)


def test_weighted_one_column_path_agrees_with_tiled_path() -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=200)
    counts = rng.integers(1, 4, 200)
    labels = rng.integers(0, 4, 200)
    one_column = weighted_silhouette(x[:, None], counts, labels)
    padded = weighted_silhouette(np.c_[x, np.zeros_like(x)], counts, labels)  # tiled path
    assert one_column == pytest.approx(padded, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_1d_equals_sklearn_on_integer_values_with_duplicates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 600
    values = rng.integers(0, 40, n).astype(np.float64)
    labels = rng.integers(0, 2 + seed, n)
    labels[0] = 50  # a singleton cluster
    expected = silhouette_score(values.reshape(-1, 1), labels)
    assert silhouette_1d(values, labels) == pytest.approx(expected, abs=1e-9)
    assert silhouette_1d(values.reshape(-1, 1), labels) == pytest.approx(expected, abs=1e-9)
    for dtype in (np.uint8, np.int16, np.int64, np.float32):
        assert silhouette_1d(values.astype(dtype), labels) == pytest.approx(expected, abs=1e-9)
    shifted = values.astype(np.int64) + 10**12  # 64-bit integers narrowed before packing
    assert silhouette_1d(shifted, labels) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("n_clusters", [2, 5, 70])  # 70: above the per-cluster-pass limit
def test_1d_equals_sklearn_on_continuous_values(n_clusters: int) -> None:
    rng = np.random.default_rng(n_clusters)
    values = rng.normal(size=700) * 5 - 2
    labels = rng.permutation(np.arange(700) % n_clusters)
    labels = np.sort(rng.choice(10**6, n_clusters, replace=False))[labels]  # sparse ids
    expected = silhouette_score(values.reshape(-1, 1), labels)
    assert silhouette_1d(values, labels) == pytest.approx(expected, abs=1e-9)


def test_1d_float32_is_scored_exactly_as_float32_numbers() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(size=500).astype(np.float32)
    labels = (values > 0.3).astype(np.int64) + (values > 1.2)
    expected = silhouette_score(values.astype(np.float64).reshape(-1, 1), labels)
    assert silhouette_1d(values, labels) == pytest.approx(expected, abs=1e-12)


def test_1d_degenerate_ties_follow_sklearn() -> None:
    """Clusters sharing one value (a = b = 0: sklearn's 0/0 gives 0), a singleton, signed
    zeros; small label ids take the packed (value bits, label) path, ids of 2**40 the
    per-cluster path."""
    values = np.array([5.0, 5, 5, 5, 1, 0.0, -0.0, 0.0, -0.0, 0.1, 0.1, 0.1, 0.1, 0.1])
    for top_label in (6, 2**40):
        labels = np.array([0, 0, 1, 1, 2, 3, 3, top_label, top_label, 4, 4, 4, 5, 5])
        expected = silhouette_score(values.reshape(-1, 1), labels)
        for dtype in (np.float64, np.float32):
            got = silhouette_1d(values.astype(dtype), labels)
            assert got == pytest.approx(expected, abs=1e-12)


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    return centres[labels] + rng.normal(size=(n, 2)), labels


def test_sampled_estimate_is_seeded() -> None:
    x, labels = blobs(2000, 0)
    first = silhouette_sampled(x, labels, n_query=200, n_reference=400, seed=7)
    assert first == silhouette_sampled(x, labels, n_query=200, n_reference=400, seed=7)
    assert first != silhouette_sampled(x, labels, n_query=200, n_reference=400, seed=8)
    assert first[1] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_interval_covers_exact_score(seed: int) -> None:
    x, labels = blobs(2500, 1)
    exact = weighted_silhouette(x, np.ones(len(x), dtype=np.int64), labels)
    assert exact == pytest.approx(silhouette_score(x, labels), abs=1e-9)
    mean, se = silhouette_sampled(x, labels, n_query=300, n_reference=600, seed=seed)
    assert 0 < se < 0.03
    assert abs(mean - exact) <= 3 * se


def test_sampled_standard_error_matches_the_spread_of_estimates() -> None:
    """Over many seeds the estimates scatter as their reported standard errors say."""
    x, labels = blobs(3000, 4)
    exact = silhouette_score(x, labels)
    runs = [silhouette_sampled(x, labels, n_query=200, n_reference=800, seed=s) for s in range(60)]
    means = np.array([m for m, _ in runs])
    errors = np.array([e for _, e in runs])
    assert abs(means.mean() - exact) < 0.01  # the reference adds only a small bias
    assert 0.6 < means.std() / errors.mean() < 1.5


def test_sampled_reference_of_every_point_leaves_only_query_error() -> None:
    """A query point in the reference leaves itself out of its own cluster, as sklearn does."""
    x, labels = blobs(400, 5)
    per_point = silhouette_samples(x, labels)
    rng = np.random.default_rng(9)
    query = np.sort(rng.choice(400, size=100, replace=False))
    mean, _ = silhouette_sampled(x, labels, n_query=100, n_reference=10_000, seed=9)
    assert mean == pytest.approx(per_point[query].mean(), abs=1e-9)


def test_sampled_small_clusters_are_always_in_the_reference() -> None:
    x, labels = blobs(5000, 6)
    labels = labels.copy()
    labels[:3] = 3  # a three-pixel cluster a uniform reference sample would miss
    exact = silhouette_score(x, labels)
    mean, se = silhouette_sampled(x, labels, n_query=4999, n_reference=300, seed=0)
    assert abs(mean - exact) < 0.02 and se > 0


def test_sampled_with_every_point_as_query_is_exact() -> None:
    x, labels = blobs(300, 2)
    mean, se = silhouette_sampled(x, labels, n_query=300, n_reference=10, seed=0)
    assert (mean, se) == (pytest.approx(silhouette_score(x, labels), abs=1e-9), 0.0)


def test_validation_errors() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    counts = np.array([2, 1, 3])
    labels = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="M×d"):
        weighted_silhouette(rows[:, 0], counts, labels)
    with pytest.raises(ValueError, match="counts must have shape"):
        weighted_silhouette(rows, counts[:2], labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        weighted_silhouette(rows, counts, labels[:2])
    with pytest.raises(ValueError, match=">= 1"):
        weighted_silhouette(rows, np.array([2, 0, 3]), labels)
    with pytest.raises(ValueError, match="whole numbers"):
        weighted_silhouette(rows, np.array([2.5, 1, 3]), labels)
    with pytest.raises(ValueError, match="whole numbers"):
        weighted_silhouette(rows, np.array([np.inf, 1, 3]), labels)
    with pytest.raises(ValueError, match="remove noise"):
        weighted_silhouette(rows, counts, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="integers"):
        weighted_silhouette(rows, counts, labels.astype(float))
    with pytest.raises(ValueError, match="at least 2 clusters"):
        weighted_silhouette(rows, counts, np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="fewer clusters than points"):
        weighted_silhouette(rows, np.ones(3, dtype=int), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="finite"):
        weighted_silhouette(np.array([[0.0, np.nan], [1, 0], [5, 5]]), counts, labels)
    with pytest.raises(ValueError, match="chunk_bytes"):
        weighted_silhouette(rows, counts, labels, chunk_bytes=4)

    values = np.array([0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\)"):
        silhouette_1d(rows, labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        silhouette_1d(values, labels)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        silhouette_1d(values, np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="fewer clusters than points"):
        silhouette_1d(values, np.arange(4))
    with pytest.raises(ValueError, match="finite"):
        silhouette_1d(np.array([0.0, np.inf, 2.0, 3.0]), np.array([0, 0, 1, 1]))

    x, lab = blobs(100, 3)
    with pytest.raises(ValueError, match="n_query and n_reference"):
        silhouette_sampled(x, lab, n_query=1, n_reference=50, seed=0)
    with pytest.raises(ValueError, match="remove noise"):
        silhouette_sampled(x, np.where(lab == 0, -1, lab), n_query=50, seed=0)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        silhouette_sampled(x, np.zeros(100, dtype=int), n_query=50, seed=0)


# --- the query sample drawn once (the tuner's trials) ----------------------------------------


def repeated_rows(seed: int, n: int, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn from a pool of 41 (so queries share rows), and k labels all present.

    Float64 with full mantissas: NumPy's matrix-vector path (a block of one row) rounds
    their products differently from the matrix product, which float32 rows (exact products
    in float64) would not show; far from 0, so that |q|² + |r|² - 2 q·r keeps the difference.
    """
    rng = np.random.default_rng(seed)
    x = 100.0 + rng.normal(size=(41, d))[rng.integers(0, 41, n)]
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)
    return x, labels


@pytest.mark.parametrize(
    ("n", "d", "n_query", "n_reference", "chunk_bytes"),
    [
        (3000, 3, 1000, 1500, 2**21),  # blocks of many rows
        (3000, 3, 1000, 1500, 8 * 1600),  # small blocks: two rows each
        (2000, 2, 73, 900, 8 * 4 * 920),  # 73 = 18 blocks of 4 + a last block of 1 query
        (2000, 2, 500, 900, 8 * 4 * 920),  # 41 distinct query rows = 10 blocks of 4 + 1
        (400, 1, 300, 200, 2**21),  # one column
        (500, 4, 500, 100, 2**21),  # every row a query: scored against every row
    ],
)
def test_distinct_rows_give_the_plain_scores_to_rounding(n, d, n_query, n_reference, chunk_bytes):
    """Every query's s(i) from distinct query and reference rows (distances weighted by
    their counts) is the plain definition's, one distance per pair, within 1e-12: each
    distance is the same bits as the plain loop's matrix product (blocks of two or more
    rows; NumPy's matrix-vector path for a block of one rounds |q|² + |r|² - 2 q·r
    differently, which between equal rows leaves a square root of rounding, ~1e-8 here)."""
    x, labels = repeated_rows(n, n, d, 4)
    queries = sil.draw_queries(x, n_query, seed=3)
    assert queries.rows.shape[0] < min(n_query, n)  # queries share rows here
    plain, _ = sil._sampled_scores(x, labels, n_query, n_reference, 3, 2**21)
    settings = (labels, n_query, n_reference, 3, chunk_bytes)
    by_row, _ = sil._sampled_scores(x, *settings, queries=queries)
    np.testing.assert_allclose(by_row, plain, rtol=0, atol=1e-12)
    kwargs = {"n_query": n_query, "n_reference": n_reference, "seed": 3, "chunk_bytes": chunk_bytes}
    assert silhouette_sampled(x, labels, queries=queries, **kwargs) == silhouette_sampled(
        x, labels, **kwargs
    )


def test_the_reference_is_weighted_by_its_distinct_rows():
    """A reference of 1,500 points drawn from 41 distinct rows is scored on at most
    41 x 5 (row, cluster) columns, not 1,500: the work that makes the estimate cheaper."""
    x, labels = repeated_rows(1, 3000, 3, 5)
    per_cluster = np.array([300, 300, 300, 300, 300])
    ref_x = x[np.concatenate([np.flatnonzero(labels == c)[:300] for c in range(5)])]
    rows, counts, starts = sil._distinct_reference(ref_x, per_cluster)
    assert rows.shape[0] <= 41 * 5 and counts.sum() == 1500
    assert np.array_equal(np.add.reduceat(counts, starts), per_cluster)
    for c in range(5):  # each cluster's rows and counts are its reference points', exactly
        part = slice(starts[c], starts[c + 1] if c + 1 < 5 else None)
        expected, expected_counts = np.unique(ref_x[300 * c : 300 * (c + 1)], axis=0,
                                              return_counts=True)  # fmt: skip
        assert np.array_equal(rows[part], expected)
        assert np.array_equal(counts[part], expected_counts)


def test_a_query_sample_gives_the_same_bits_when_sums_are_kept_in_parts(monkeypatch):
    x, labels = repeated_rows(1, 3000, 3, 5)
    settings = (labels, 1000, 1500, 0, 8 * 3 * 210)
    queries = sil.draw_queries(x, 1000, 0)
    expected, _ = sil._sampled_scores(x, *settings, queries=queries)
    monkeypatch.setattr(sil, "_SCORE_BYTES", 8 * 5 * 7)  # a few rows' sums at a time
    got, _ = sil._sampled_scores(x, *settings, queries=queries)
    assert np.array_equal(got, expected)


def test_a_query_sample_is_for_its_rows_and_seed_only():
    x, labels = repeated_rows(2, 600, 2, 3)
    queries = sil.draw_queries(x, 100, seed=1)
    for other in ({"seed": 2}, {"n_query": 50}):
        settings = {"n_query": 100, "n_reference": 200, "seed": 1, **other}
        with pytest.raises(ValueError, match="queries drawn for 600 rows"):
            silhouette_sampled(x, labels, queries=queries, **settings)
    with pytest.raises(ValueError, match="queries drawn for 600 rows"):
        silhouette_sampled(x[:500], labels[:500], n_query=100, seed=1, queries=queries)


def test_queries_share_a_row_only_when_its_bits_are_the_same():
    x = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, 1.0], [2.0, 1.0]])
    queries = sil.draw_queries(x, 4, seed=0)
    assert queries.rows.shape[0] == 3  # +0.0 and -0.0 rows are kept apart
    assert np.array_equal(queries.rows[queries.row_of], -2.0 * x[queries.index])
