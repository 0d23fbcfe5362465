"""Clustering a feature matrix into per-pixel labels.

The estimators come from :mod:`segclust.backends` (scikit-learn or cuML). Pixels often
repeat the same feature row (a grey image has at most 256 distinct values), so KMeans and
DBSCAN are fitted on the distinct rows with their counts as ``sample_weight`` and the labels
mapped back: that is the same objective as fitting every pixel, at a fraction of the cost.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segclust.backends import (
    grid_dbscan,
    make_estimator,
    resolve_backend,
    supports_sample_weight,
)
from segclust.compression import (
    DEFAULT_MAX_DISTINCT_FRACTION,
    RowCompression,
    compress_rows,
)

log = logging.getLogger(__name__)

NOISE = -1
# Compress only when it removes at least this share of the rows.
COMPRESS_MAX_DISTINCT_FRACTION = DEFAULT_MAX_DISTINCT_FRACTION
# KMeans on more rows than this (uncompressed, scikit-learn) first runs its n_init
# k-means++ starts on a seeded subsample of this size, then refines the best centres with
# Lloyd iterations on every row: the starts are where the time goes at 12 MP.
KMEANS_INIT_ROWS = 100_000
# BIRCH has no sample_weight: above this many rows its CF tree is built on a seeded subsample
# and every row is assigned with ``predict`` (nearest subcluster, then its global label).
BIRCH_MAX_FIT_ROWS = 50_000


@dataclass(frozen=True)
class ClusterResult:
    """Labels (N,) int32 with -1 for noise, and how they were obtained."""

    labels: np.ndarray
    backend: str
    compressed: bool
    distinct_rows: int | None  # None when not counted (compression did not pay or apply)
    notes: list[str] = field(default_factory=list)
    # What compress_rows found, for the metrics to reuse ("auto": not checked here, so the
    # metrics find out themselves; None: over half the rows are distinct).
    row_compression: RowCompression | str | None = "auto"


def distinct_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows, the index mapping every row to its distinct row, and the counts."""
    found = compress_rows(features, max_distinct_fraction=None)
    assert found is not None  # never None without a threshold
    return found.rows, found.inverse, found.counts


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size (ties: smaller old label first).

    Makes labels independent of an estimator's arbitrary numbering, so that colours and
    files are stable; noise stays -1.
    """
    labels = np.asarray(labels)
    if labels.size == 0 or labels.max() == NOISE:
        return np.full(labels.shape, NOISE, dtype=np.int32)
    if labels.min() < NOISE:
        raise ValueError("labels must be >= -1")
    sizes = np.bincount(labels.ravel() + 1)[1:]  # O(N): labels are small cluster numbers
    old = np.flatnonzero(sizes)
    order = np.lexsort((old, -sizes[old]))
    mapping = np.full(int(old.max()) + 2, NOISE, dtype=np.int32)  # slot 0 is noise
    mapping[old[order] + 1] = np.arange(len(old), dtype=np.int32)
    return mapping[labels + 1]


def cluster_features(
    features: np.ndarray,
    algorithm: str,
    params: dict[str, Any],
    *,
    backend: str = "sklearn",
    seed: int = 0,
    compress: bool | None = None,
    compression: RowCompression | str | None = "auto",
) -> ClusterResult:
    """Cluster N×d ``features`` with ``algorithm``; labels are renumbered by cluster size.

    ``compress=None`` fits on distinct rows with weights when that removes at least half of
    the rows (KMeans and DBSCAN only); ``True``/``False`` force it on or off.
    ``compression`` lets a caller that clusters the same rows many times (the tuner) pass
    :func:`segclust.compression.compress_rows`'s answer once: a ``RowCompression`` or
    ``None`` for "does not pay"; ``"auto"`` computes it here.
    """
    used, note = resolve_backend(backend, algorithm)
    notes = [note] if note else []
    if note:
        log.warning(note)
    fit_x, inverse, weights = features, None, None
    n_distinct: int | None = None
    if supports_sample_weight(algorithm) and compress is not False:
        if isinstance(compression, str) or (compress and compression is None):
            limit = None if compress else COMPRESS_MAX_DISTINCT_FRACTION
            compression = compress_rows(features, max_distinct_fraction=limit)
        if compression is not None:
            n_distinct = compression.n_distinct
            fit_x, inverse = compression.rows, compression.inverse
            weights = compression.counts.astype(np.float64)
    if algorithm == "kmeans" and fit_x.shape[0] < params["n_clusters"]:
        # Fewer distinct points than clusters: every distinct point is its own cluster.
        notes.append(
            f"only {fit_x.shape[0]} distinct feature rows for n_clusters={params['n_clusters']}"
        )
        labels = np.arange(fit_x.shape[0], dtype=np.int32)
    else:
        labels = None
        if algorithm == "dbscan" and used == "sklearn" and weights is None:
            labels = grid_dbscan(fit_x, params["eps"], params["min_samples"])
            if labels is not None:
                notes.append("DBSCAN ran on the exact grid-based dbscan package")
        if labels is None:
            labels = _fit_predict(fit_x, weights, algorithm, params, used, seed, notes)
    labels = np.asarray(labels, dtype=np.int32)
    if inverse is not None:
        labels = labels[inverse]
    return ClusterResult(
        labels=relabel_by_size(labels),
        backend=used,
        compressed=inverse is not None,
        distinct_rows=n_distinct,
        notes=notes,
        row_compression=compression,
    )


def _fit_predict(
    x: np.ndarray,
    weights: np.ndarray | None,
    algorithm: str,
    params: dict[str, Any],
    backend: str,
    seed: int,
    notes: list[str],
) -> np.ndarray:
    """Fit the estimator and label every row; warnings become notes, not noise."""
    estimator = make_estimator(algorithm, params, backend, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if weights is not None:
            labels = estimator.fit_predict(x, sample_weight=weights)
        elif algorithm == "kmeans" and backend == "sklearn" and x.shape[0] > KMEANS_INIT_ROWS:
            labels = _kmeans_seeded_from_subsample(x, params, seed)
            notes.append(
                f"KMeans started from the best of {params['n_init']} k-means++ runs on a "
                f"seeded subsample of {KMEANS_INIT_ROWS} rows, then refined on every row"
            )
        elif algorithm == "birch" and x.shape[0] > BIRCH_MAX_FIT_ROWS:
            rng = np.random.default_rng(seed)
            pick = np.sort(rng.choice(x.shape[0], size=BIRCH_MAX_FIT_ROWS, replace=False))
            labels = estimator.fit(x[pick]).predict(x)
            notes.append(
                f"BIRCH tree built on a seeded subsample of {BIRCH_MAX_FIT_ROWS} rows; "
                "every row assigned with predict"
            )
        else:
            labels = estimator.fit_predict(x)
    for warning in caught:
        text = str(warning.message).splitlines()[0]
        if text not in notes:
            notes.append(text)
    return labels


def _kmeans_seeded_from_subsample(x: np.ndarray, params: dict[str, Any], seed: int) -> np.ndarray:
    """KMeans on every row, started from the centres of a KMeans on a seeded subsample."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(x.shape[0], size=KMEANS_INIT_ROWS, replace=False))
    start = make_estimator("kmeans", params, "sklearn", seed).fit(x[pick])
    refine = KMeans(
        n_clusters=params["n_clusters"],
        init=start.cluster_centers_.astype(x.dtype),
        n_init=1,
        max_iter=params["max_iter"],
        random_state=seed,
    )
    return refine.fit_predict(x)
