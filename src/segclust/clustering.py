"""Clustering a feature matrix into per-pixel labels.

The algorithm comes from the registry (:mod:`segclust.algorithms`), the estimator from
:mod:`segclust.backends` (scikit-learn or cuML). Pixels often repeat the same feature row (a
grey image has at most 256 distinct values), so algorithms whose ``fit`` takes
``sample_weight`` are fitted on the distinct rows with their counts as weights and the labels
mapped back: the same objective as fitting every pixel, at a fraction of the cost
(:mod:`segclust.compression` finds the rows).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from segclust.algorithms import Algorithm, FitContext, get_algorithm
from segclust.backends import resolve_backend
from segclust.compression import (
    DEFAULT_MAX_DISTINCT_FRACTION,
    RowCompression,
    compress_rows,
)
from segclust.labels import relabel_by_size

log = logging.getLogger(__name__)

# Compress only when it removes at least this share of the rows.
COMPRESS_MAX_DISTINCT_FRACTION = DEFAULT_MAX_DISTINCT_FRACTION


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


def cluster_features(
    features: np.ndarray,
    algorithm: str,
    params: Mapping[str, Any],
    *,
    backend: str = "sklearn",
    seed: int = 0,
    shape: tuple[int, int] | None = None,
    compress: bool | None = None,
    compression: RowCompression | str | None = "auto",
) -> ClusterResult:
    """Cluster N×d ``features`` with ``algorithm``; labels are renumbered by cluster size.

    ``shape``: the image's H×W, for algorithms that need the pixel grid (Ward).
    ``compress=None`` fits on distinct rows with weights when that removes at least half of
    the rows (algorithms with ``sample_weight`` only); ``True``/``False`` force it on or off.
    ``compression`` lets a caller that clusters the same rows many times (the tuner) pass
    :func:`segclust.compression.compress_rows`'s answer once: a ``RowCompression`` or
    ``None`` for "does not pay"; ``"auto"`` computes it here.
    """
    entry = get_algorithm(algorithm)
    entry.check_size(features.shape[0])
    if entry.needs_grid and (shape is None or shape[0] * shape[1] != features.shape[0]):
        raise ValueError(
            f"{algorithm} needs the H×W of the image the {features.shape[0]} rows form"
        )
    used, note = resolve_backend(backend, algorithm)
    context = FitContext(seed=seed, shape=shape, notes=[note] if note else [])
    if note:
        log.warning(note)
    fit_x, inverse, weights = features, None, None
    n_distinct: int | None = None
    if entry.sample_weight and compress is not False:
        if isinstance(compression, str) or (compress and compression is None):
            limit = None if compress else COMPRESS_MAX_DISTINCT_FRACTION
            compression = compress_rows(features, max_distinct_fraction=limit)
        if compression is not None:
            n_distinct = compression.n_distinct
            fit_x, inverse = compression.rows, compression.inverse
            weights = compression.counts.astype(np.float64)
    n_clusters = params.get("n_clusters")
    if n_clusters is not None and not entry.needs_grid and fit_x.shape[0] < n_clusters:
        # Fewer distinct points than clusters: every distinct point is its own cluster.
        context.notes.append(
            f"only {fit_x.shape[0]} distinct feature rows for n_clusters={n_clusters}"
        )
        labels = np.arange(fit_x.shape[0], dtype=np.int32)
    else:
        labels = _fit_predict(fit_x, weights, entry, params, used, context)
    labels = np.asarray(labels, dtype=np.int32)
    if inverse is not None:
        labels = labels[inverse]
    return ClusterResult(
        labels=relabel_by_size(labels),
        backend=used,
        compressed=inverse is not None,
        distinct_rows=n_distinct,
        notes=context.notes,
        row_compression=compression,
    )


def _fit_predict(
    x: np.ndarray,
    weights: np.ndarray | None,
    entry: Algorithm,
    params: Mapping[str, Any],
    backend: str,
    context: FitContext,
) -> np.ndarray:
    """Fit the estimator and label every row; warnings become notes, not noise."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = None
        if weights is None and backend == "sklearn" and entry.large_fit is not None:
            labels = entry.large_fit(x, params, context)
        if labels is None:
            estimator = entry.make(params, backend, replace(context, sample_weight=weights))
            if weights is not None:
                labels = estimator.fit_predict(x, sample_weight=weights)
            else:
                labels = estimator.fit_predict(x)
    for warning in caught:
        text = str(warning.message).splitlines()[0]
        if text not in context.notes:
            context.notes.append(text)
    return np.asarray(labels)
