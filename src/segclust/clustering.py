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

from segclust.backends import make_estimator, resolve_backend, supports_sample_weight

log = logging.getLogger(__name__)

NOISE = -1
# Compress only when it removes at least this share of the rows.
COMPRESS_MAX_DISTINCT_FRACTION = 0.5


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
        estimator = make_estimator(algorithm, params, used, seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if weights is not None:
                labels = estimator.fit_predict(fit_x, sample_weight=weights)
            else:
                labels = estimator.fit_predict(fit_x)
        for warning in caught:
            text = str(warning.message).splitlines()[0]
            if text not in notes:
                notes.append(text)
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
