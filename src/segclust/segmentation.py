"""A segmentation and how it was scored: the clustering step every entry point shares.

:func:`cluster_and_score` clusters a saved or fresh feature matrix
(:mod:`segclust.clustering`) and scores it (:mod:`segclust.metrics`); the ``cluster`` and
``tune`` stages, :func:`segclust.segment` and the benchmarks all call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segclust.clustering import ClusterResult, cluster_features
from segclust.config import ClusterConfig, MetricsConfig
from segclust.metrics import configured_metrics
from segclust.silhouette import QuerySample


@dataclass(frozen=True)
class Segmentation:
    """Labels (H×W int32, -1 = noise), their scores, and how they were made.

    ``labels`` are the clusters; ``segments`` are what to draw and compare with people: the
    clusters themselves, connected regions with ``regions="connected"``, or the cut of the
    region hierarchy when one was asked for (``hierarchy``, a
    :class:`segclust.hierarchy.Hierarchy`: cut it at any other level with ``.cut(t)`` or
    ``.cut_regions(n)``). The internal scores in ``metrics`` (silhouette, ...) are always
    the clustering's.
    """

    labels: np.ndarray
    metrics: dict[str, Any]
    feature_names: list[str]
    segments: np.ndarray | None = None
    hierarchy: Any = None

    def __post_init__(self) -> None:
        if self.segments is None:
            object.__setattr__(self, "segments", self.labels)


def cluster_and_score(
    features: np.ndarray,
    shape: tuple[int, int],
    cluster: ClusterConfig,
    *,
    backend: str = "sklearn",
    seed: int = 0,
    metrics: MetricsConfig | None = None,
    feature_names: list[str] | None = None,
    queries: QuerySample | None = None,
) -> Segmentation:
    """Cluster an N×d feature matrix of an H×W image and score the result.

    ``queries``: the sampled silhouette's queries, drawn beforehand from ``features`` (see
    :func:`segclust.metrics.cluster_metrics`).
    """
    _check_shape(features, shape)
    result = cluster_features(
        features, cluster.algorithm, cluster.params, backend=backend, seed=seed, shape=shape
    )
    return score_clustering(
        features,
        shape,
        cluster.algorithm,
        result,
        seed=seed,
        metrics=metrics,
        feature_names=feature_names,
        queries=queries,
    )


def score_clustering(
    features: np.ndarray,
    shape: tuple[int, int],
    algorithm: str,
    result: ClusterResult,
    *,
    seed: int = 0,
    metrics: MetricsConfig | None = None,
    feature_names: list[str] | None = None,
    queries: QuerySample | None = None,
) -> Segmentation:
    """The segmentation of a clustering already made (``cluster_features`` of ``features``
    with ``algorithm``): the tuner's best trial is the refit when it searched every pixel."""
    height, width = _check_shape(features, shape)
    metrics = metrics or MetricsConfig()
    scores = configured_metrics(
        features,
        result.labels,
        metrics,
        seed=seed,
        compression=result.row_compression,
        queries=queries,
    )
    report: dict[str, Any] = {
        "algorithm": algorithm,
        "backend": result.backend,
        "compressed": result.compressed,
        "distinct_rows": result.distinct_rows,
        **scores,
    }
    if result.notes:
        report["notes"] = result.notes
    return Segmentation(
        labels=result.labels.reshape(height, width),
        metrics=report,
        feature_names=list(feature_names or []),
    )


def _check_shape(features: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
    height, width = shape
    if features.shape[0] != height * width:
        raise ValueError(f"{features.shape[0]} feature rows for a {width}x{height} image")
    return height, width
