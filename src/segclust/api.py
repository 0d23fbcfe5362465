"""The notebook face: one call from an image array to labels and scores.

>>> import numpy as np
>>> from segclust import segment
>>> image = np.zeros((20, 20), np.uint8); image[:, 10:] = 200
>>> result = segment(image, features="intensity", algorithm="kmeans", n_clusters=2)
>>> result.labels.shape, result.metrics["n_clusters"]
((20, 20), 2)

The DVC stages call the same :func:`cluster_and_score` on the saved feature matrices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segclust.clustering import cluster_features
from segclust.config import (
    ClusterConfig,
    FeatureConfig,
    MetricsConfig,
    RegionsConfig,
    ScalerConfig,
    SmoothingConfig,
)
from segclust.features import feature_matrix
from segclust.metrics import configured_metrics
from segclust.regions import segments_for
from segclust.smoothing import smooth_image


@dataclass(frozen=True)
class Segmentation:
    """Labels (H×W int32, -1 = noise), their scores, and how they were made.

    ``labels`` are the clusters; ``segments`` are what to draw and compare with people: the
    clusters themselves, or connected regions with ``regions="connected"``. The internal
    scores in ``metrics`` (silhouette, ...) are always the clustering's.
    """

    labels: np.ndarray
    metrics: dict[str, Any]
    feature_names: list[str]
    segments: np.ndarray | None = None

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
) -> Segmentation:
    """Cluster an N×d feature matrix of an H×W image and score the result."""
    height, width = shape
    if features.shape[0] != height * width:
        raise ValueError(f"{features.shape[0]} feature rows for a {width}x{height} image")
    metrics = metrics or MetricsConfig()
    result = cluster_features(
        features, cluster.algorithm, dict(cluster.params), backend=backend, seed=seed
    )
    scores = configured_metrics(
        features,
        result.labels,
        metrics,
        seed=seed,
        backend=result.backend,
        compression=result.row_compression,
    )
    report: dict[str, Any] = {
        "algorithm": cluster.algorithm,
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


def segment(
    image: np.ndarray,
    features: str | dict[str, Any] = "intensity",
    algorithm: str = "kmeans",
    *,
    scaler: str = "standard",
    scaler_scope: str = "column",
    smoothing: str | dict[str, Any] = "none",
    regions: str | dict[str, Any] = "clusters",
    backend: str = "sklearn",
    seed: int = 0,
    silhouette_max_exact: int = MetricsConfig.silhouette_max_exact,
    silhouette_sample_size: int = MetricsConfig.silhouette_sample_size,
    silhouette_reference_size: int = MetricsConfig.silhouette_reference_size,
    **params: Any,
) -> Segmentation:
    """Segment one image (H×W grey or H×W×3/4 BGR[A], 8/16-bit or float) by clustering.

    ``features``: a preset name (``intensity``, ``intensity_xy``, ``sobel``) or blocks with
    weights, e.g. ``{"lab": {"weight": 1.0}, "xy": {"weight": 0.5}}`` (see
    :mod:`segclust.features`). ``params`` are the algorithm's own (``n_clusters``, ``eps``,
    ``min_samples``, ...); they are validated exactly as the config files are.
    ``smoothing`` (``none``, ``gaussian``, ``bilateral``, ``meanshift`` or a dict with
    ``method`` and its parameters) filters the photo first; ``regions="connected"`` (or a dict
    with ``min_area_fraction``, ``connectivity``) makes ``segments`` connected regions.
    """
    if isinstance(features, str):
        feature_config = FeatureConfig.from_dict({"name": features})
    else:
        feature_config = FeatureConfig.from_dict({"name": "custom", "blocks": features})
    cluster = ClusterConfig.from_dict({"algorithm": algorithm, **params})
    metrics = MetricsConfig(
        silhouette_max_exact=silhouette_max_exact,
        silhouette_sample_size=silhouette_sample_size,
        silhouette_reference_size=silhouette_reference_size,
    )
    smoothing_config = SmoothingConfig.from_dict(
        {"method": smoothing} if isinstance(smoothing, str) else smoothing
    )
    regions_config = RegionsConfig.from_dict(
        {"method": regions} if isinstance(regions, str) else regions
    )
    image = np.asarray(image)
    matrix, names = feature_matrix(
        smooth_image(image, smoothing_config),
        feature_config,
        ScalerConfig.from_dict({"name": scaler, "scope": scaler_scope}),
    )
    result = cluster_and_score(
        matrix,
        image.shape[:2],
        cluster,
        backend=backend,
        seed=seed,
        metrics=metrics,
        feature_names=names,
    )
    segments = segments_for(result.labels, regions_config)
    return Segmentation(result.labels, result.metrics, result.feature_names, segments)
