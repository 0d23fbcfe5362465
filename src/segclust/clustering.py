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

log = logging.getLogger(__name__)

NOISE = -1
# Compress only when it removes at least this share of the rows.
COMPRESS_MAX_DISTINCT_FRACTION = 0.5
# BIRCH has no sample_weight: above this many rows its CF tree is built on a seeded subsample
# and every row is assigned with ``predict`` (nearest subcluster, then its global label).
BIRCH_MAX_FIT_ROWS = 50_000


@dataclass(frozen=True)
class ClusterResult:
    """Labels (N,) int32 with -1 for noise, and how they were obtained."""

    labels: np.ndarray
    backend: str
    compressed: bool
    distinct_rows: int
    notes: list[str] = field(default_factory=list)


def distinct_rows(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct rows, the index mapping every row to its distinct row, and the counts."""
    unique, inverse, counts = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    return unique, inverse.reshape(-1), counts


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size (ties: smaller old label first).

    Makes labels independent of an estimator's arbitrary numbering, so that colours and
    files are stable; noise stays -1.
    """
    labels = np.asarray(labels)
    valid = labels[labels != NOISE]
    if valid.size == 0:
        return np.full(labels.shape, NOISE, dtype=np.int32)
    old, counts = np.unique(valid, return_counts=True)
    order = np.lexsort((old, -counts))
    mapping = np.full(int(old.max()) + 1, NOISE, dtype=np.int32)
    mapping[old[order]] = np.arange(len(old), dtype=np.int32)
    out = np.full(labels.shape, NOISE, dtype=np.int32)
    mask = labels != NOISE
    out[mask] = mapping[labels[mask]]
    return out


def cluster_features(
    features: np.ndarray,
    algorithm: str,
    params: dict[str, Any],
    *,
    backend: str = "sklearn",
    seed: int = 0,
    compress: bool | None = None,
) -> ClusterResult:
    """Cluster N×d ``features`` with ``algorithm``; labels are renumbered by cluster size.

    ``compress=None`` fits on distinct rows with weights when that removes at least half of
    the rows (KMeans and DBSCAN only); ``True``/``False`` force it on or off.
    """
    used, note = resolve_backend(backend, algorithm)
    notes = [note] if note else []
    if note:
        log.warning(note)
    n_rows = features.shape[0]
    fit_x, inverse, weights = features, None, None
    n_distinct = n_rows
    if supports_sample_weight(algorithm) and compress is not False:
        unique, inv, counts = distinct_rows(features)
        n_distinct = unique.shape[0]
        if compress or n_distinct <= COMPRESS_MAX_DISTINCT_FRACTION * n_rows:
            fit_x, inverse, weights = unique, inv, counts.astype(np.float64)
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
        distinct_rows=int(n_distinct),
        notes=notes,
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
