"""Internal quality scores of a clustering, on scikit-learn's metrics.

Scores are always computed here, on the CPU, whatever back-end ran the clustering: the same
labels give the same numbers on a laptop and on a GPU machine, and a tuning winner does not
depend on the hardware. (The exact paths below are fast; cuML's silhouette would score one
unweighted sample and differ.)

Noise points (label -1) are left out of every score. With fewer than two clusters the
scores are undefined: they are ``None`` and ``undefined_reason`` says why.

The silhouette is O(N²) over pixels, so it is computed, in this order of preference:

``exact`` on 1-D features
    :func:`segclust.silhouette.silhouette_1d`, O(N) through the histogram of values;
``exact`` on distinct rows
    :func:`segclust.silhouette.weighted_silhouette` over the distinct (feature row, label)
    pairs weighted by their counts, when there are at most ``max_exact`` of them;
``sampled``
    :func:`segclust.silhouette.silhouette_sampled`: ``sample_size`` seeded query pixels, each
    scored against a seeded reference sample of about ``reference_size`` pixels stratified by
    cluster, with the standard error in ``silhouette_stderr``.

The distinct (row, label) pairs are counted from the distinct feature rows
(:mod:`segclust.compression`, one sort), which the clustering step can hand over.
Calinski-Harabasz and Davies-Bouldin are scikit-learn's formulas computed with weights
(``np.bincount`` sums, O(N·d)): on the distinct pairs with their counts when rows repeat,
on every pixel otherwise; tests check them against scikit-learn on the expanded pixels.

Either way the value equals, or estimates, scikit-learn's ``silhouette_score`` on all pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from segclust.compression import (
    RowCompression,
    compress_rows,
)
from segclust.config import MetricsConfig
from segclust.labels import NOISE
from segclust.report import rounded
from segclust.silhouette import (
    QuerySample,
    dense_labels,
    silhouette_1d,
    silhouette_sampled,
    weighted_silhouette,
)


def cluster_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    max_exact: int = MetricsConfig.silhouette_max_exact,
    sample_size: int = MetricsConfig.silhouette_sample_size,
    reference_size: int = MetricsConfig.silhouette_reference_size,
    compression: RowCompression | str | None = "auto",
    queries: QuerySample | None = None,
) -> dict[str, Any]:
    """Scores of ``labels`` (N,) on ``features`` (N×d); JSON-ready dict.

    Keys: ``n_clusters``, ``noise_fraction``, ``silhouette``, ``silhouette_method``
    (``exact`` / ``sampled`` / ``undefined``), ``silhouette_sample_size`` (pixels scored),
    ``silhouette_stderr`` (0 when exact),
    ``calinski_harabasz``, ``davies_bouldin`` and, when undefined, ``undefined_reason``.
    ``compression``: the distinct rows of ``features`` if the caller has them (``None``:
    known to be mostly distinct; ``"auto"``: find out here). ``queries``: the sampled
    silhouette's queries drawn beforehand from ``features``
    (:func:`segclust.silhouette.draw_queries`, same ``sample_size`` and ``seed``) by a caller
    that scores many labelings of them; used when no row is noise (with noise the estimate
    is over the other rows, so its queries are drawn from them here).
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels for {features.shape[0]} feature rows")
    valid = labels != NOISE
    n_valid = int(valid.sum())
    all_valid = n_valid == labels.size
    l_valid = labels if all_valid else labels[valid]
    l_valid, n_clusters = dense_labels(l_valid)
    result: dict[str, Any] = {
        "n_clusters": n_clusters,
        "noise_fraction": rounded(1.0 - n_valid / labels.size),
        "silhouette": None,
        "silhouette_method": "undefined",
        "silhouette_sample_size": 0,
        "silhouette_stderr": None,
        "calinski_harabasz": None,
        "davies_bouldin": None,
    }
    reason = _undefined_reason(n_clusters, n_valid, labels.size)
    if reason:
        result["undefined_reason"] = reason
        return result
    x_valid = features if all_valid else features[valid]
    if isinstance(compression, RowCompression):
        compression = RowCompression(
            compression.rows,
            compression.inverse if all_valid else compression.inverse[valid],
            compression.counts,
        )
    pairs = _weighted_pairs(x_valid, l_valid, compression)
    rows, pair_labels, counts = pairs if pairs is not None else (x_valid, l_valid, None)
    ch, db = calinski_harabasz_davies_bouldin(rows, pair_labels, counts)
    result["calinski_harabasz"], result["davies_bouldin"] = rounded(ch), rounded(db)

    value, stderr, method, scored = _silhouette(
        x_valid,
        l_valid,
        seed=seed,
        max_exact=max_exact,
        sample_size=sample_size,
        reference_size=reference_size,
        pairs=pairs,
        queries=queries if all_valid else None,
    )
    if value is None:
        result["undefined_reason"] = method
        return result
    result["silhouette"] = rounded(value)
    result["silhouette_stderr"] = None if stderr is None else rounded(stderr)
    result["silhouette_method"] = method
    result["silhouette_sample_size"] = scored
    return result


def calinski_harabasz_davies_bouldin(
    rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float]:
    """scikit-learn's ``calinski_harabasz_score`` and ``davies_bouldin_score`` of ``rows``
    repeated ``weights`` times (labels 0..k-1), in a few O(N·d) passes.

    Per-cluster sums come from ``np.bincount`` (no per-cluster copies); the within-cluster
    sum of squares uses Σ‖x‖² − Σ n_c‖c‖², and only the distances to the own centroid (for
    Davies-Bouldin) need an N×d difference, in the rows' own precision. So one call serves
    12 M pixels and a few distinct rows with their counts alike.
    """
    dims = rows.shape[1]
    k = int(labels.max()) + 1
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    sizes = np.bincount(labels, weights=w, minlength=k).astype(np.float64)
    total = float(sizes.sum())
    sums = np.stack(
        [
            np.bincount(labels, weights=rows[:, j] if w is None else w * rows[:, j], minlength=k)
            for j in range(dims)
        ],
        axis=1,
    )
    centroids = sums / sizes[:, None]
    mean = sums.sum(axis=0) / total
    squares = np.einsum("ij,ij->i", rows, rows, dtype=np.float64)
    sum_squares = float(squares.sum() if w is None else w @ squares)
    extra = float(sizes @ ((centroids - mean) ** 2).sum(axis=1))
    intra = max(sum_squares - float(sizes @ (centroids**2).sum(axis=1)), 0.0)
    if intra <= 1e-12 * max(sum_squares, 1e-300):  # numerically zero: sklearn's 1.0
        ch = 1.0
    else:
        ch = extra * (total - k) / (intra * (k - 1.0))

    diff = rows - centroids.astype(rows.dtype)[labels]
    spread = np.sqrt(np.einsum("ij,ij->i", diff, diff, dtype=np.float64))
    del diff
    within = np.bincount(labels, weights=spread if w is None else w * spread, minlength=k)
    within /= sizes
    return ch, _davies_bouldin_from(centroids, within)


def _davies_bouldin_from(
    centroids: np.ndarray, within: np.ndarray, block_rows: int = 1024
) -> float:
    """Davies-Bouldin from centroids and mean within-cluster distances, in row blocks.

    A DBSCAN run can give tens of thousands of clusters: the k×k centroid distances are
    computed ``block_rows`` rows at a time (≈ 130 MB for 16 k clusters), never all at once.
    """
    if np.allclose(within, 0.0):
        return 0.0
    k = centroids.shape[0]
    worst = np.empty(k)
    all_coincide = True
    for lo in range(0, k, block_rows):
        rows = slice(lo, min(lo + block_rows, k))
        between = cdist(centroids[rows], centroids)
        all_coincide = all_coincide and bool(np.allclose(between, 0.0))
        between[between == 0] = np.inf
        worst[rows] = np.max((within[rows, None] + within[None, :]) / between, axis=1)
    return 0.0 if all_coincide else float(np.mean(worst))


def _weighted_pairs(
    x: np.ndarray, labels: np.ndarray, compression: RowCompression | str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Distinct (feature row, label) pairs with their pixel counts; None if rows barely repeat.

    ``compression`` holds the distinct rows of ``x`` (``"auto"``: find them; ``None``: the
    caller found most rows distinct). When every distinct row has one label (the rows were
    clustered, not the pixels) the pairs are the distinct rows themselves, in the same order
    as the general way (one sort of an int64 key per pixel) gives them.
    """
    if isinstance(compression, str):
        compression = compress_rows(x)
    if compression is None:
        return None
    one_label = _label_per_row(labels, compression.inverse, compression.n_distinct)
    if one_label is not None:
        present, pair_labels, counts = one_label
        return compression.rows[present], pair_labels, counts
    n_labels = int(labels.max()) + 1
    keys = compression.inverse.astype(np.int64) * n_labels + labels
    ordered = np.sort(keys)
    first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    pair_keys = ordered[first]
    counts = np.diff(np.append(first, ordered.size))
    return compression.rows[pair_keys // n_labels], pair_keys % n_labels, counts


def _label_per_row(
    labels: np.ndarray, inverse: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(row index, label, count) of the distinct rows that have pixels, when each has one
    label; None when some row's pixels have several labels."""
    row_labels = np.zeros(n_rows, dtype=np.int64)
    row_labels[inverse] = labels
    if not np.array_equal(row_labels[inverse], labels):
        return None
    counts = np.bincount(inverse, minlength=n_rows)
    present = np.flatnonzero(counts)
    return present, row_labels[present], counts[present]


def configured_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    config: MetricsConfig,
    *,
    seed: int = 0,
    compression: RowCompression | str | None = "auto",
    queries: QuerySample | None = None,
) -> dict[str, Any]:
    """:func:`cluster_metrics` with the silhouette settings of the ``metrics`` config group."""
    return cluster_metrics(
        features,
        labels,
        seed=seed,
        max_exact=config.silhouette_max_exact,
        sample_size=config.silhouette_sample_size,
        reference_size=config.silhouette_reference_size,
        compression=compression,
        queries=queries,
    )


def _silhouette(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    max_exact: int,
    sample_size: int,
    reference_size: int,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    queries: QuerySample | None = None,
) -> tuple[float | None, float | None, str, int]:
    """(value, standard error, method or reason, pixels scored) for non-noise pixels.

    The standard error is 0 when the value is exact and None when it is unknown.
    ``pairs``: the distinct (row, label) pairs with counts, when rows repeat.
    """
    n = labels.size
    if pairs is not None and (x.shape[1] == 1 or pairs[0].shape[0] <= max_exact):
        rows, pair_labels, counts = pairs
        return weighted_silhouette(rows, counts, pair_labels), 0.0, "exact", n
    if x.shape[1] == 1:
        return silhouette_1d(x[:, 0], labels), 0.0, "exact", n
    if sample_size >= n:  # a "sample" would be every pixel: score them all, exactly
        from sklearn.metrics import silhouette_score

        return float(silhouette_score(x, labels)), 0.0, "exact", n
    try:
        value, stderr = silhouette_sampled(
            x, labels, n_query=sample_size, n_reference=reference_size, seed=seed, queries=queries
        )
    except ValueError as exc:
        return None, None, f"silhouette sample: {exc}", 0
    return value, stderr, "sampled", sample_size


def _undefined_reason(n_clusters: int, n_valid: int, n_total: int) -> str | None:
    if n_valid == 0:
        return f"all {n_total} points are noise"
    if n_clusters < 2:
        return f"only {n_clusters} cluster; scores need at least 2"
    if n_clusters >= n_valid:
        return f"{n_clusters} clusters for {n_valid} points; scores need fewer clusters"
    return None
