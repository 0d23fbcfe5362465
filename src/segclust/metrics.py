"""Internal quality scores of a clustering, on scikit-learn's metrics.

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

Either way the value equals, or estimates, scikit-learn's ``silhouette_score`` on all pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segclust.backends import silhouette
from segclust.compression import (
    DEFAULT_MAX_DISTINCT_FRACTION,
    RowCompression,
    compress_rows,
    count_distinct_keys,
)
from segclust.config import MetricsConfig
from segclust.silhouette import silhouette_1d, silhouette_sampled, weighted_silhouette

NOISE = -1


def rounded(value: float) -> float:
    """Round to 6 significant digits: stable JSON across runs, readable in ``dvc exp show``."""
    return float(f"{value:.6g}")


def cluster_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    max_exact: int = MetricsConfig.silhouette_max_exact,
    sample_size: int = MetricsConfig.silhouette_sample_size,
    reference_size: int = MetricsConfig.silhouette_reference_size,
    backend: str = "sklearn",
    compression: RowCompression | str | None = "auto",
) -> dict[str, Any]:
    """Scores of ``labels`` (N,) on ``features`` (N×d); JSON-ready dict.

    Keys: ``n_clusters``, ``noise_fraction``, ``silhouette``, ``silhouette_method``
    (``exact`` / ``sampled`` / ``undefined``), ``silhouette_sample_size`` (pixels scored),
    ``silhouette_stderr`` (0 when exact),
    ``calinski_harabasz``, ``davies_bouldin`` and, when undefined, ``undefined_reason``.
    ``compression``: the distinct rows of ``features`` if the caller has them (``None``:
    known to be mostly distinct; ``"auto"``: find out here).
    """
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels for {features.shape[0]} feature rows")
    valid = labels != NOISE
    n_valid = int(valid.sum())
    cluster_ids = np.unique(labels[valid])
    result: dict[str, Any] = {
        "n_clusters": int(cluster_ids.size),
        "noise_fraction": rounded(1.0 - n_valid / labels.size),
        "silhouette": None,
        "silhouette_method": "undefined",
        "silhouette_sample_size": 0,
        "silhouette_stderr": None,
        "calinski_harabasz": None,
        "davies_bouldin": None,
    }
    reason = _undefined_reason(cluster_ids.size, n_valid, labels.size)
    if reason:
        result["undefined_reason"] = reason
        return result
    all_valid = n_valid == labels.size
    x_valid = features if all_valid else features[valid]
    l_valid = labels if all_valid else labels[valid]
    distinct: tuple[np.ndarray, np.ndarray] | bool | None = None
    if isinstance(compression, RowCompression):
        inverse = compression.inverse if all_valid else compression.inverse[valid]
        distinct = (compression.rows, inverse)
    elif compression is None and DEFAULT_MAX_DISTINCT_FRACTION * labels.size > max_exact:
        distinct = False  # the caller found over half the rows distinct: too many pairs
    result["calinski_harabasz"] = rounded(calinski_harabasz_score(x_valid, l_valid))
    result["davies_bouldin"] = rounded(davies_bouldin_score(x_valid, l_valid))

    value, stderr, method, scored = _silhouette(
        x_valid,
        l_valid,
        seed=seed,
        max_exact=max_exact,
        sample_size=sample_size,
        reference_size=reference_size,
        backend=backend,
        distinct=distinct,
    )
    if value is None:
        result["undefined_reason"] = method
        return result
    result["silhouette"] = rounded(value)
    result["silhouette_stderr"] = None if stderr is None else rounded(stderr)
    result["silhouette_method"] = method
    result["silhouette_sample_size"] = scored
    return result


def configured_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    config: MetricsConfig,
    *,
    seed: int = 0,
    backend: str = "sklearn",
    compression: RowCompression | str | None = "auto",
) -> dict[str, Any]:
    """:func:`cluster_metrics` with the silhouette settings of the ``metrics`` config group."""
    return cluster_metrics(
        features,
        labels,
        seed=seed,
        max_exact=config.silhouette_max_exact,
        sample_size=config.silhouette_sample_size,
        reference_size=config.silhouette_reference_size,
        backend=backend,
        compression=compression,
    )


def _silhouette(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    max_exact: int,
    sample_size: int,
    reference_size: int,
    backend: str,
    distinct: tuple[np.ndarray, np.ndarray] | bool | None,
) -> tuple[float | None, float | None, str, int]:
    """(value, standard error, method or reason, pixels scored) for non-noise pixels.

    The standard error is 0 when the value is exact and None when it is unknown.
    ``distinct`` is (distinct rows, pixel → row index) (``None``: find them; ``False``:
    there are too many for an exact score).
    """
    n = labels.size
    if backend == "cuml":  # cuML scores on the GPU: one seeded sample, as it has no weights
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        if np.unique(labels[pick]).size < 2:
            return None, None, "silhouette sample holds one cluster", 0
        value = silhouette(x[pick], labels[pick], backend)
        if pick.size == n:
            return value, 0.0, "exact", n
        return value, None, "sampled", int(pick.size)
    if x.shape[1] == 1:
        return silhouette_1d(x[:, 0], labels), 0.0, "exact", n
    pairs = _distinct_pairs(x, labels, distinct, max_exact)
    if pairs is not None:
        rows, pair_labels, counts = pairs
        return weighted_silhouette(rows, counts, pair_labels), 0.0, "exact", n
    if sample_size >= n:  # a "sample" would be every pixel: score them all, exactly
        return silhouette(x, labels, backend), 0.0, "exact", n
    try:
        value, stderr = silhouette_sampled(
            x, labels, n_query=sample_size, n_reference=reference_size, seed=seed
        )
    except ValueError as exc:
        return None, None, f"silhouette sample: {exc}", 0
    return value, stderr, "sampled", sample_size


def _distinct_pairs(
    x: np.ndarray,
    labels: np.ndarray,
    distinct: tuple[np.ndarray, np.ndarray] | bool | None,
    max_exact: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Distinct (row, label) pairs and their counts, or None when there are over max_exact."""
    if distinct is False:
        return None
    if distinct is None:
        found = compress_rows(x, max_distinct_fraction=min(1.0, max_exact / max(labels.size, 1)))
        if found is None:
            return None
        distinct = (found.rows, found.inverse)
    rows, row_index = distinct
    n_labels = int(labels.max()) + 1
    keys = row_index.astype(np.int64) * n_labels + labels
    ordered, n_pairs = count_distinct_keys(keys)
    if n_pairs > max_exact:
        return None
    pair_keys, counts = np.unique(ordered, return_counts=True)
    return rows[pair_keys // n_labels], pair_keys % n_labels, counts


def _undefined_reason(n_clusters: int, n_valid: int, n_total: int) -> str | None:
    if n_valid == 0:
        return f"all {n_total} points are noise"
    if n_clusters < 2:
        return f"only {n_clusters} cluster; scores need at least 2"
    if n_clusters >= n_valid:
        return f"{n_clusters} clusters for {n_valid} points; scores need fewer clusters"
    return None
