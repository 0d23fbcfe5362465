"""Silhouette scores of pixel clusterings, computed from distinct feature rows and their counts.

Many pixels share one feature row (a grey image has at most 256), so the exact silhouette of
the expanded pixels can be computed from the distinct rows weighted by their counts. Each
function here equals scikit-learn's ``silhouette_score`` on the expanded data (Euclidean
distance, sklearn's conventions: a point in a one-point cluster scores 0, and so does 0/0).

Who does the work:

* :func:`weighted_silhouette` - SciPy's ``cdist`` computes square tiles of Euclidean distances
  (from coordinate differences, so a row is at distance exactly 0 from itself), and BLAS
  matrix-vector products (NumPy ``@``) fold each tile into per-cluster weighted sums. Each
  tile serves both of its row blocks (distances are symmetric), so half of the M² distances
  are computed. Time O(M²·d), memory one tile plus an M×k table of sums. One-column rows take
  the 1-D path below.
* :func:`silhouette_1d` - NumPy only: ``np.unique(..., return_counts=True)`` (hash based on
  NumPy >= 2.3) histograms the (value, label) pairs, then prefix sums over the sorted distinct
  values give every point's summed distance to each cluster: O(N) plus O(k·(U + P)) for U
  distinct values, P distinct (value, label) pairs and k clusters.
* :func:`silhouette_sampled` - a seeded estimate with its standard error, for feature sets whose
  distinct rows are too many for the O(M²) exact score: query pixels scored against a
  reference sample stratified by cluster, distances from BLAS matrix products. A caller
  scoring many labelings of one matrix draws the queries once (:func:`draw_queries`). A
  distance is computed once per distinct query row and distinct reference row (a smoothed
  photo's colours repeat) and weighted by the reference row's count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from threadpoolctl import threadpool_limits

# The symmetric tiling keeps an M×k float64 table of per-cluster sums; above this size the
# sums are kept per row block instead (each distance is then computed twice).
_SUMS_TABLE_BYTES = 256 * 2**20
# Per-cluster histogramming of 64-bit values that cannot be packed with the label: k passes
# over the data, so only for few clusters; above this a sort-based inverse is used.
_MAX_CLUSTER_PASSES = 64
_DEFAULT_CHUNK_BYTES = 2 * 2**20  # 512×512 float64 tiles: fastest of 1-16 MiB measured
# The sampled estimate from distinct query rows keeps their per-cluster sums, up to this much.
_SCORE_BYTES = 16 * 2**20


# ---------------------------------------------------------------------------------------------
# Validation helpers
# ---------------------------------------------------------------------------------------------


def _check_labels(labels: np.ndarray, n: int) -> np.ndarray:
    """Integer labels >= 0, one per row: noise (-1) must be removed by the caller."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if n and labels.min() < 0:
        raise ValueError("labels must be >= 0: remove noise points (label -1) first")
    return labels


def _check_cluster_count(n_clusters: int, n_points: int) -> None:
    """sklearn's rule: the silhouette needs 2 <= clusters <= points - 1."""
    if n_clusters < 2:
        raise ValueError(f"silhouette needs at least 2 clusters, got {n_clusters}")
    if n_clusters >= n_points:
        raise ValueError(
            f"silhouette needs fewer clusters than points: {n_clusters} clusters "
            f"for {n_points} points"
        )


def _silhouette_values(a: np.ndarray, b: np.ndarray, own_weight: np.ndarray) -> np.ndarray:
    """s = (b - a) / max(a, b), with sklearn's zeros for one-point clusters and for 0/0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (b - a) / np.maximum(a, b)
    s[own_weight <= 1] = 0.0
    return np.nan_to_num(s, nan=0.0, posinf=0.0, neginf=0.0)


# ---------------------------------------------------------------------------------------------
# 1-D core: prefix sums over sorted distinct values
# ---------------------------------------------------------------------------------------------


def _silhouette_pairs_1d(
    distinct: np.ndarray, pu: np.ndarray, pc: np.ndarray, pn: np.ndarray, k: int
) -> float:
    """Exact silhouette from (value index, cluster, count) triples over sorted distinct values.

    ``distinct`` (U,) is sorted float64; triple p stands for ``pn[p]`` points of value
    ``distinct[pu[p]]`` in cluster ``pc[p]`` (0..k-1). For cluster c with weights w_c(u) the
    summed distance from value x_u is x_u·(2·L(u) - T) + T_s - 2·L_s(u), with L, L_s the
    inclusive prefix sums of w_c and w_c·x and T, T_s their totals. Values are shifted by the
    cluster's weighted median so the prefix sums stay small (less cancellation when a tight
    cluster lies far from 0); a cluster sitting on one value still sums to exactly 0 there.
    """
    n_u = distinct.shape[0]
    weight = pn.astype(np.float64)
    totals = np.bincount(pc, weights=weight, minlength=k)
    a = np.zeros(pu.shape[0])
    b = np.full(pu.shape[0], np.inf)
    for c in range(k):
        mine = pc == c
        w_u = np.bincount(pu[mine], weights=weight[mine], minlength=n_u)
        cum_w = np.cumsum(w_u)
        total = cum_w[-1]
        centre = distinct[min(int(np.searchsorted(cum_w, total / 2)), n_u - 1)]
        x = distinct - centre
        cum_s = np.cumsum(w_u * x)
        sums = x * (2.0 * cum_w - total) + (cum_s[-1] - 2.0 * cum_s)
        np.maximum(sums, 0.0, out=sums)  # rounding must not make a distance sum negative
        at_pairs = sums[pu]
        with np.errstate(divide="ignore", invalid="ignore"):
            a[mine] = at_pairs[mine] / (total - 1.0)
        np.minimum(b, np.where(mine, np.inf, at_pairs / total), out=b)
    s = _silhouette_values(a, b, totals[pc])
    return float(np.dot(s, weight) / weight.sum())


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered 0..k-1 in label order, and k.

    O(N) through a lookup table when labels are small non-negative integers (returned as
    they are when already 0..k-1); ``np.unique`` otherwise.
    """
    if labels.size == 0:
        return labels.astype(np.int64), 0
    if labels.min() >= 0 and labels.max() < max(2**20, labels.size):
        present = np.flatnonzero(np.bincount(labels))
        if present.size == present[-1] + 1:
            return labels, int(present.size)
        table = np.zeros(int(present[-1]) + 1, dtype=np.int64)
        table[present] = np.arange(present.size)
        return table[labels], int(present.size)
    present, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(-1), int(present.size)


def _triples_from_pairs(
    values: np.ndarray, labels: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Sorted distinct values and (value index, cluster, count) triples from short arrays."""
    distinct = np.unique(values)
    pu = np.searchsorted(distinct, values)
    pc, k = dense_labels(labels)
    return distinct.astype(np.float64), pu, pc, counts, k


# ---------------------------------------------------------------------------------------------
# 1-D histogram of (value, label) pairs for many points
# ---------------------------------------------------------------------------------------------


def _narrow_64bit(values: np.ndarray) -> np.ndarray:
    """The values in a 32-bit dtype when that loses nothing (value and label then fit a uint64).

    Float64 values that are exactly float32 are cast; 64-bit integers spanning less than 2**32
    are shifted to start at 0, which changes no distance.
    """
    if values.dtype == np.float64:
        narrow = values.astype(np.float32)
        if np.array_equal(narrow, values):
            return narrow
    elif values.dtype.kind in "iu" and values.dtype.itemsize == 8:
        low = values.min()
        if int(values.max()) - int(low) < 2**32:
            return (values - low).astype(np.uint32)
    return values


def _value_label_counts(
    values: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (value, label) pairs of N points and how many points each holds.

    The fast path packs the value's bit pattern and the label into one uint64 and counts
    distinct keys with ``np.unique`` (a hash table on NumPy >= 2.3, no sort of the N keys).
    Returned values are the original ones except for integer values shifted by a constant,
    which no distance notices.
    """
    label_bits = max(int(labels.max()).bit_length(), 1)
    values = _narrow_64bit(values)
    value_bits = 8 * values.dtype.itemsize
    if value_bits + label_bits <= 64:
        unsigned = np.dtype(f"u{values.dtype.itemsize}")
        key = np.ascontiguousarray(values).view(unsigned).astype(np.uint64)
        key <<= np.uint64(label_bits)
        key |= labels.astype(np.uint64, copy=False)
        keys, counts = np.unique(key, return_counts=True)
        pair_labels = (keys & np.uint64((1 << label_bits) - 1)).astype(np.int64)
        pair_values = (keys >> np.uint64(label_bits)).astype(unsigned).view(values.dtype)
        return pair_values, pair_labels, counts
    present = np.unique(labels)
    if present.size <= _MAX_CLUSTER_PASSES:
        per_label = [np.unique(values[labels == label], return_counts=True) for label in present]
        pair_values = np.concatenate([vals for vals, _ in per_label])
        pair_labels = np.repeat(present.astype(np.int64), [vals.size for vals, _ in per_label])
        return pair_values, pair_labels, np.concatenate([cnt for _, cnt in per_label])
    distinct, inverse = np.unique(values, return_inverse=True)
    _, label_index = np.unique(labels, return_inverse=True)
    pair_key = inverse.reshape(-1).astype(np.int64) * present.size + label_index.reshape(-1)
    keys, counts = np.unique(pair_key, return_counts=True)
    return distinct[keys // present.size], present[keys % present.size].astype(np.int64), counts


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def silhouette_1d(values: np.ndarray, labels: np.ndarray) -> float:
    """Exact silhouette of 1-D features ``values`` (N,) or (N, 1) under ``labels`` (N,).

    Equals ``sklearn.metrics.silhouette_score(values.reshape(-1, 1), labels)`` on all N points
    without its O(N²) distance matrix: a histogram of the distinct (value, label) pairs and
    prefix sums over the sorted values. Float32 values are scored exactly as float32 numbers
    (arithmetic in float64); sklearn's own float32 path keeps float32 distances and so differs
    from this by ~1e-7. Labels must be integers >= 0 (noise removed by the caller).
    """
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"values must have shape (N,) or (N, 1), got {values.shape}")
    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    if values.dtype.kind not in "fiu":
        raise ValueError(f"values must be real numbers, got dtype {values.dtype}")
    n = values.shape[0]
    labels = _check_labels(labels, n)
    if n < 3:
        raise ValueError(f"silhouette needs at least 3 points, got {n}")
    pair_values, pair_labels, counts = _value_label_counts(values, labels)
    distinct, pu, pc, pn, k = _triples_from_pairs(pair_values, pair_labels, counts)
    if not np.isfinite(distinct).all():
        raise ValueError("values must be finite (no NaN or infinity)")
    _check_cluster_count(k, n)
    return _silhouette_pairs_1d(distinct, pu, pc, pn, k)


def weighted_silhouette(
    rows: np.ndarray,
    counts: np.ndarray,
    labels: np.ndarray,
    *,
    chunk_bytes: int = _DEFAULT_CHUNK_BYTES,
) -> float:
    """Exact silhouette of the expanded data: row i of ``rows`` (M×d) repeated ``counts[i]`` times.

    Equals ``silhouette_score(np.repeat(rows, counts, axis=0), np.repeat(labels, counts))``
    while touching only the M rows: for row i in cluster c, a(i) is its weighted distance sum
    to c divided by W_c - 1 (its own duplicates are at distance 0 and it does not count
    itself), b(i) the smallest weighted mean distance to another cluster; the score is the
    count-weighted mean of s(i). Rows need not be distinct. ``chunk_bytes`` bounds the distance
    tile (square, float64); the result does not depend on it beyond rounding. One-column rows
    use the O(M log M) 1-D method. Labels must be integers >= 0 (noise removed by the caller).
    """
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ValueError(f"rows must be a non-empty M×d array, got shape {rows.shape}")
    if rows.dtype.kind not in "fiub":
        raise ValueError(f"rows must be real numbers, got dtype {rows.dtype}")
    m = rows.shape[0]
    counts = np.asarray(counts)
    if counts.shape != (m,):
        raise ValueError(f"counts must have shape ({m},), got {counts.shape}")
    if counts.dtype.kind not in "iuf" or not (
        np.isfinite(counts).all() and np.array_equal(counts, np.round(counts))
    ):
        raise ValueError("counts must be whole numbers")
    if counts.min() < 1:
        raise ValueError("counts must be >= 1")
    counts = counts.astype(np.int64)
    labels = _check_labels(labels, m)
    if chunk_bytes < 8:
        raise ValueError(f"chunk_bytes must be at least 8 (one float64), got {chunk_bytes}")
    x = rows.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("rows must be finite (no NaN or infinity)")
    cluster, k = dense_labels(labels)
    n_points = int(counts.sum())
    _check_cluster_count(k, n_points)

    if x.shape[1] == 1:
        distinct, pu, pc, pn, k = _triples_from_pairs(x[:, 0], cluster, counts)
        return _silhouette_pairs_1d(distinct, pu, pc, pn, k)

    order = np.argsort(cluster, kind="stable")  # contiguous clusters: few per tile
    x, cluster, weight = x[order], cluster[order], counts[order].astype(np.float64)
    totals = np.bincount(cluster, weights=weight, minlength=k)
    bounds = np.searchsorted(cluster, np.arange(k + 1))  # cluster c: rows bounds[c]:bounds[c+1]
    tile = max(1, math.isqrt(chunk_bytes // 8))
    # The matrix-vector products are memory bound: BLAS threads only add contention (measured
    # 3-4x slower with OpenBLAS's default threads when the cores are busy).
    with threadpool_limits(limits=1, user_api="blas"):
        if m * k * 8 <= _SUMS_TABLE_BYTES:
            sums = _cluster_sums_symmetric(x, weight, bounds, tile)
            s = _row_silhouettes(sums, cluster, totals)
        else:
            s = np.empty(m)
            for start in range(0, m, tile):
                block = slice(start, min(start + tile, m))
                sums = _cluster_sums_block(x, weight, bounds, tile, block)
                s[block] = _row_silhouettes(sums, cluster[block], totals)
    return float(np.dot(s, weight) / weight.sum())


def reference_counts(totals: np.ndarray, n_reference: int) -> np.ndarray:
    """Reference points per cluster: proportional to its size, at least a floor, at most all.

    The floor is 100 points, fewer when there are many clusters (``n_reference // k``, but
    never under 2), so the reference stays near ``n_reference`` + 2k points even for a
    DBSCAN run with thousands of clusters.
    """
    n, k = int(totals.sum()), totals.size
    floor = min(100, max(2, n_reference // k))
    counts = np.minimum(totals, np.maximum(np.ceil(n_reference * totals / n), floor))
    return counts.astype(np.int64)


@dataclass(frozen=True, eq=False)
class QuerySample:
    """The query pixels of :func:`silhouette_sampled`, drawn once for many labelings.

    The queries do not depend on the labels (the reference sample does), so the tuner draws
    them once per image instead of once per trial. Pixels share feature rows and a query's
    distances depend only on its row, so they are computed once per distinct row: ``rows``
    holds the distinct rows times -2 (exact: a power of two), ready for the BLAS product.
    """

    n: int  # rows of the feature matrix the queries were drawn from
    seed: int
    index: np.ndarray  # sorted query rows
    state: dict[str, Any]  # the generator after the draw: the reference draws continue it
    rows: np.ndarray  # -2 x the distinct query rows, float64
    squares: np.ndarray  # squared norms of the distinct query rows
    row_of: np.ndarray  # each query's distinct row

    def generator(self) -> np.random.Generator:
        """A generator in the state :func:`silhouette_sampled` has after drawing the queries."""
        bits = np.random.PCG64()
        bits.state = self.state
        return np.random.Generator(bits)


def draw_queries(features: np.ndarray, n_query: int, seed: int) -> QuerySample:
    """The seeded query sample of ``silhouette_sampled(features, ..., n_query, seed=seed)``.

    Distinct rows are found on the rows' bits (not their values), so a query shares a row's
    distances only with queries of the very same float64 row.
    """
    features = _as_matrix(features)
    n = features.shape[0]
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(n, size=min(n_query, n), replace=False))
    x = features[index].astype(np.float64)
    bits = np.ascontiguousarray(x).view(np.uint64)
    _, first, row_of = np.unique(bits, axis=0, return_index=True, return_inverse=True)
    distinct = x[first]
    return QuerySample(
        n=n,
        seed=seed,
        index=index,
        state=rng.bit_generator.state,
        rows=distinct * -2.0,
        squares=np.einsum("ij,ij->i", distinct, distinct),
        row_of=row_of.reshape(-1),
    )


def silhouette_sampled(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_query: int = 5000,
    n_reference: int = 20000,
    seed: int = 0,
    chunk_bytes: int = 2**21,
    queries: QuerySample | None = None,
) -> tuple[float, float]:
    """Seeded estimate of the silhouette from a query sample scored against a reference sample.

    Method: ``n_query`` points are drawn uniformly (the estimate is their mean s(i)); each
    one's mean distance to every cluster, a(i) and b(i), is estimated from a *reference*
    sample stratified by cluster (``ceil(n_reference·n_c/N)`` points of cluster c, at least
    min(100, n_reference/k) and 2, or all of it), so small clusters are never missed and
    memory stays bounded with thousands of clusters, and each per-cluster mean is
    unbiased; a query point that is also in the reference leaves itself out of its own
    cluster's mean, as the exact score does. The standard error is that of the query mean,
    std(s)/sqrt(n_query) with the finite-population correction; the reference adds a small
    ratio bias, O(1/reference points per cluster), that it does not include. With a reference
    of every point the a(i), b(i) are exact and only the query sampling remains.

    Distances come from one BLAS product per block (|q|² + |r|² - 2 q·r, float64): about
    2.4× faster than ``cdist``, accurate to ~1e-14 here. Cost O(n_query·n_reference·d).
    A block of query rows holds ``chunk_bytes`` of distances: 2 MiB stays in a core's cache
    through the six passes over it (square root, sums); 512 rows × 20,000 (80 MB) made the
    same estimate 2.9× slower on one core (the values are the same bits: each row's
    arithmetic does not depend on the block).

    ``queries``: the query sample drawn beforehand by :func:`draw_queries` (same features,
    ``n_query`` and ``seed``), for a caller that scores many labelings of one feature
    matrix (the tuner's trials): the queries are then not drawn again. Either way a
    distance is computed once per distinct query row and distinct reference row of a
    cluster however many points share them (a smoothed photo's colours repeat: 1.1-2.1×
    faster on BSDS photos, ``benchmarks/silhouette_rows.py``), weighted by the reference
    row's count. Each distance is the same bits as one computed per pair; the sums differ
    from a pair-by-pair sum in rounding only, within 1e-12 (tests/test_silhouette.py).
    """
    if queries is None:  # the same bits as the block loop, computed once per distinct row
        queries = draw_queries(features, n_query, seed)
    scores, n = _sampled_scores(
        features, labels, n_query, n_reference, seed, chunk_bytes, queries=queries
    )
    mean = float(scores.mean())
    if scores.size == n:
        return mean, 0.0
    correction = math.sqrt(1.0 - scores.size / n)
    return mean, float(scores.std(ddof=1) / math.sqrt(scores.size) * correction)


def _sampled_scores(
    features: np.ndarray,
    labels: np.ndarray,
    n_query: int,
    n_reference: int,
    seed: int,
    chunk_bytes: int,
    queries: QuerySample | None = None,
) -> tuple[np.ndarray, int]:
    """s(i) of the query rows of :func:`silhouette_sampled`, in query order, and N."""
    features = _as_matrix(features)
    n = features.shape[0]
    labels = _check_labels(labels, n)
    if n_query < 2 or n_reference < 2:
        raise ValueError(f"n_query and n_reference must be >= 2, got {n_query}, {n_reference}")
    cluster, k = dense_labels(labels)
    _check_cluster_count(k, n)
    totals = np.bincount(cluster, minlength=k)
    if queries is None:
        rng = np.random.default_rng(seed)
        query = np.sort(rng.choice(n, size=min(n_query, n), replace=False))
    elif (queries.n, queries.seed, queries.index.size) != (n, seed, min(n_query, n)):
        raise ValueError(
            f"queries drawn for {queries.n} rows, seed {queries.seed}, {queries.index.size} "
            f"queries; asked for {n} rows, seed {seed}, {min(n_query, n)} queries"
        )
    else:
        rng, query = queries.generator(), queries.index

    order = np.argsort(cluster.astype(np.int16 if k < 2**15 else np.int64), kind="stable")
    starts = np.concatenate([[0], np.cumsum(totals)])
    per_cluster = reference_counts(totals, n_reference)
    if query.size == n:  # every point is a query: score against every point, exactly
        per_cluster = totals.astype(np.int64)
    reference = np.concatenate(
        [
            order[starts[c] + np.sort(rng.choice(totals[c], size=per_cluster[c], replace=False))]
            for c in range(k)
        ]
    )
    ref_x = features[reference].astype(np.float64)
    query_cluster = cluster[query]
    own_in_reference = np.isin(query, reference).astype(np.float64)
    if queries is not None:
        scores = _scores_by_distinct_row(
            queries, ref_x, chunk_bytes, query_cluster, own_in_reference, per_cluster, totals
        )
    else:  # the plain definition, one distance per (query, reference point)
        ref_starts = np.concatenate([[0], np.cumsum(per_cluster)[:-1]])
        ref_sq = np.einsum("ij,ij->i", ref_x, ref_x)
        chunk_rows = max(1, chunk_bytes // (8 * reference.size))
        scores = np.empty(query.size)
        # one buffer for every block: a fresh one per block is mapped and faulted in afresh
        # outside the main thread (glibc's per-thread arenas), 3x slower in a Dask worker
        block = np.empty((min(chunk_rows, query.size), reference.size))
        ref_t = np.ascontiguousarray(ref_x.T)
        for lo in range(0, query.size, chunk_rows):
            rows = slice(lo, min(lo + chunk_rows, query.size))
            q = features[query[rows]].astype(np.float64)
            dist = block[: q.shape[0]]
            np.matmul(q, ref_t, out=dist)
            dist *= -2.0
            dist += np.einsum("ij,ij->i", q, q)[:, None]
            dist += ref_sq[None, :]
            np.maximum(dist, 0.0, out=dist)
            np.sqrt(dist, out=dist)
            sums = np.add.reduceat(dist, ref_starts, axis=1)
            scores[rows] = _query_scores(
                sums, query_cluster[rows], own_in_reference[rows], per_cluster, totals
            )
    return scores, n


def _as_matrix(features: np.ndarray) -> np.ndarray:
    """N×d features (a 1-D array is one column)."""
    features = np.asarray(features)
    if features.ndim == 1:
        features = features.reshape(-1, 1)
    if features.ndim != 2:
        raise ValueError(f"features must be N×d, got shape {features.shape}")
    return features


def _query_scores(
    sums: np.ndarray,
    own: np.ndarray,
    own_in_reference: np.ndarray,
    per_cluster: np.ndarray,
    totals: np.ndarray,
) -> np.ndarray:
    """s(i) of queries from their distance sums to each cluster's reference points."""
    denominators = np.broadcast_to(per_cluster.astype(np.float64), sums.shape).copy()
    index = np.arange(own.size)
    denominators[index, own] -= own_in_reference
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / denominators
    a = means[index, own].copy()
    means[index, own] = np.inf
    b = means.min(axis=1)
    return _silhouette_values(a, b, totals[own])


def _distinct_reference(
    ref_x: np.ndarray, per_cluster: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference's distinct rows within each cluster: (rows, counts, each cluster's first
    row). Rows in cluster order, as the reference is; two rows are one when their bits are.

    A smoothed photo's reference repeats its colours (a 20,000-point reference of a BSDS
    photo after mean shift holds 5,600-15,000 distinct rows), so each distance is computed
    once per distinct row and weighted by its count.
    """
    k = per_cluster.size
    cluster_of = np.repeat(np.arange(k, dtype=np.uint64), per_cluster)
    keyed = np.column_stack([cluster_of, np.ascontiguousarray(ref_x).view(np.uint64)])
    order = np.lexsort(keyed.T[::-1])  # by cluster, then by the row's bits
    keyed = keyed[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = (keyed[1:] != keyed[:-1]).any(axis=1)
    at = np.flatnonzero(first)
    counts = np.diff(np.append(at, order.size))
    rows = ref_x[order[at]]
    starts = np.searchsorted(keyed[at, 0], np.arange(k, dtype=np.uint64))
    return rows, counts, starts


def _scores_by_distinct_row(
    queries: QuerySample,
    ref_x: np.ndarray,
    chunk_bytes: int,
    query_cluster: np.ndarray,
    own_in_reference: np.ndarray,
    per_cluster: np.ndarray,
    totals: np.ndarray,
) -> np.ndarray:
    """s(i) of every query, each distance computed once per distinct query row and distinct
    reference row.

    Each distance is the same bits as in the block loop of :func:`_sampled_scores` (the same
    |q|² + |r|² - 2 q·r, element by element); a cluster's sum is count × distance summed
    over its distinct reference rows, so the sums, and the estimate, differ from the block
    loop's only in rounding (within 1e-12, tests/test_silhouette.py). A block of query rows
    holds ``chunk_bytes`` of distances; blocks have two or more rows (a one-row block would
    take NumPy's matrix-vector path, which rounds differently), so a query's s(i) does not
    depend on how the rows are grouped. The per-cluster sums of as many rows as
    ``_SCORE_BYTES`` holds are kept, and their queries scored in one go.
    """
    n_query, n_distinct = queries.index.size, queries.rows.shape[0]
    k = totals.size
    ref_rows, counts, ref_starts = _distinct_reference(ref_x, per_cluster)
    weight = counts.astype(np.float64)
    ref_sq = np.einsum("ij,ij->i", ref_rows, ref_rows)
    ref_t = np.ascontiguousarray(ref_rows.T)
    chunk_rows = max(2, chunk_bytes // (8 * ref_rows.shape[0]))
    block = np.empty((min(chunk_rows, max(2, n_distinct)), ref_rows.shape[0]))

    def distance_sums(rows: np.ndarray) -> np.ndarray:
        dist = block[: rows.size]
        np.matmul(queries.rows[rows], ref_t, out=dist)
        dist += queries.squares[rows, None]
        dist += ref_sq[None, :]
        np.maximum(dist, 0.0, out=dist)
        np.sqrt(dist, out=dist)
        dist *= weight[None, :]
        return np.add.reduceat(dist, ref_starts, axis=1)

    scores = np.empty(n_query)
    group = chunk_rows * max(1, _SCORE_BYTES // (8 * k * chunk_rows))
    by_row = np.argsort(queries.row_of, kind="stable")
    bounds = np.searchsorted(queries.row_of[by_row], np.arange(n_distinct + 1))
    for start in range(0, n_distinct, group):
        stop = min(start + group, n_distinct)
        sums = np.empty((stop - start, k))
        for lo in range(start, stop, chunk_rows):
            rows = np.arange(lo, min(lo + chunk_rows, stop))
            if rows.size == 1:
                sums[lo - start] = distance_sums(np.repeat(rows, 2))[0]  # a 2-row product
            else:
                sums[lo - start : rows[-1] + 1 - start] = distance_sums(rows)
        members = by_row[bounds[start] : bounds[stop]]
        scores[members] = _query_scores(
            sums[queries.row_of[members] - start],
            query_cluster[members],
            own_in_reference[members],
            per_cluster,
            totals,
        )
    return scores


# ---------------------------------------------------------------------------------------------
# Tiled distance sums for weighted_silhouette
# ---------------------------------------------------------------------------------------------


def _segments(block: slice, bounds: np.ndarray) -> list[tuple[int, slice, slice]]:
    """(cluster, offsets within the block, absolute rows) for each cluster a block spans.

    Rows are sorted by cluster and cluster c holds rows ``bounds[c]:bounds[c + 1]``, so each
    piece is a contiguous slice and its weighted sum is one BLAS matrix-vector product (a
    one-hot matrix product with a few columns is several times slower with OpenBLAS).
    """
    first = int(np.searchsorted(bounds, block.start, side="right")) - 1
    pieces = []
    for c in range(first, bounds.size - 1):
        lo, hi = max(int(bounds[c]), block.start), min(int(bounds[c + 1]), block.stop)
        if lo >= block.stop:
            break
        if hi > lo:
            pieces.append((c, slice(lo - block.start, hi - block.start), slice(lo, hi)))
    return pieces


def _cluster_sums_symmetric(
    x: np.ndarray, weight: np.ndarray, bounds: np.ndarray, tile: int
) -> np.ndarray:
    """M×k table of sum_{j in c} w_j·||x_i - x_j||, each tile computed once and used twice."""
    m = x.shape[0]
    sums = np.zeros((m, bounds.size - 1))
    blocks = [slice(i, min(i + tile, m)) for i in range(0, m, tile)]
    pieces = [_segments(blk, bounds) for blk in blocks]
    for p, bi in enumerate(blocks):
        for q in range(p, len(blocks)):
            bj = blocks[q]
            dist = cdist(x[bi], x[bj])
            for c, offsets, rows in pieces[q]:
                sums[bi, c] += dist[:, offsets] @ weight[rows]
            if q != p:
                for c, offsets, rows in pieces[p]:
                    sums[bj, c] += weight[rows] @ dist[offsets, :]
    return sums


def _cluster_sums_block(
    x: np.ndarray, weight: np.ndarray, bounds: np.ndarray, tile: int, block: slice
) -> np.ndarray:
    """The rows of ``block`` of the per-cluster sums table, for when the whole table is big."""
    m = x.shape[0]
    sums = np.zeros((block.stop - block.start, bounds.size - 1))
    for start in range(0, m, tile):
        bj = slice(start, min(start + tile, m))
        dist = cdist(x[block], x[bj])
        for c, offsets, rows in _segments(bj, bounds):
            sums[:, c] += dist[:, offsets] @ weight[rows]
    return sums


def _row_silhouettes(sums: np.ndarray, cluster: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """s(i) for rows with per-cluster distance sums ``sums`` (rows×k) and cluster ``cluster``."""
    rows = np.arange(sums.shape[0])
    own_total = totals[cluster]
    with np.errstate(divide="ignore", invalid="ignore"):
        a = sums[rows, cluster] / (own_total - 1.0)
        means = sums / totals
    means[rows, cluster] = np.inf
    return _silhouette_values(a, means.min(axis=1), own_total)
