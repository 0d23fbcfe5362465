"""The notebook face: one call from an image array to labels and scores.

>>> import numpy as np
>>> from segclust import segment
>>> image = np.zeros((20, 20), np.uint8); image[:, 10:] = 200
>>> result = segment(image, features="intensity", algorithm="kmeans", n_clusters=2)
>>> result.labels.shape, result.metrics["n_clusters"]
((20, 20), 2)

A whole pipeline configuration, as ``dvc exp run -S +experiment=best`` composes it:

>>> best = compose_config(["+experiment=best"])
>>> segment_with(image, best).segments.shape
(20, 20)

The region hierarchy (the cascade) on top, cut by the registered rule of your choice:

>>> cut = {"cut": "regions", "n_regions": 2, "leaf_area": 20}  # leaves of ~20 px on a tiny image
>>> result = segment(image, smoothing="meanshift", hierarchy=cut)
>>> int(result.segments.max()) + 1, int(result.hierarchy.cut_regions(1).max()) + 1
(2, 1)

The DVC stages call the same :func:`cluster_and_score` on the saved feature matrices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segclust.config import (
    ClusterConfig,
    Config,
    DataConfig,
    FeatureConfig,
    HierarchyConfig,
    MetricsConfig,
    RegionsConfig,
    RenderConfig,
    ScalerConfig,
    SmoothingConfig,
    TuneConfig,
)

__all__ = ["Segmentation", "cluster_and_score", "compose_config", "segment", "segment_with"]
from segclust.features import feature_matrix
from segclust.hierarchy import build_hierarchy, cut_hierarchy
from segclust.presets import compose_params, preset
from segclust.regions import segments_for
from segclust.segmentation import Segmentation, cluster_and_score
from segclust.smoothing import smooth_image


def segment(
    image: np.ndarray,
    features: str | dict[str, Any] = "intensity",
    algorithm: str = "kmeans",
    *,
    scaler: str = "standard",
    scaler_scope: str = "column",
    smoothing: str | dict[str, Any] = "none",
    regions: str | dict[str, Any] = "clusters",
    hierarchy: bool | str | dict[str, Any] = False,
    boundary_model: str = "base",
    backend: str = "sklearn",
    seed: int = 0,
    silhouette_max_exact: int = MetricsConfig.silhouette_max_exact,
    silhouette_sample_size: int = MetricsConfig.silhouette_sample_size,
    silhouette_reference_size: int = MetricsConfig.silhouette_reference_size,
    **params: Any,
) -> Segmentation:
    """Segment one image (H×W grey or H×W×3/4 BGR[A], 8/16-bit or float) by clustering.

    ``features``: a preset name (a file of ``conf/features/``: ``intensity``, ``lab``,
    ``lab_texture``, ...) or blocks with weights, e.g.
    ``{"lab": {"weight": 1.0}, "xy": {"weight": 0.5}}`` (see :mod:`segclust.features`).
    ``algorithm``: any entry of :mod:`segclust.algorithms`; ``params`` are its own
    (``n_clusters``, ``eps``, ``min_cluster_size``, ...), validated as the config files are.
    ``smoothing`` (``none``, ``gaussian``, ``bilateral``, ``meanshift`` or a dict with
    ``method`` and its parameters) filters the photo first; ``regions="connected"`` (or a dict
    with ``min_area_fraction``, ``connectivity``) makes ``segments`` connected regions.
    ``hierarchy`` (``True``, a cut name — ``threshold``, ``relative``, ``regions`` — or a dict
    of ``conf/hierarchy`` keys) builds the region hierarchy and makes ``segments`` its cut
    (:mod:`segclust.hierarchy`; the hierarchy itself is ``result.hierarchy``); with its
    default learned edges, on the boundaries of ``boundary_model`` (an entry of
    ``conf/boundaries/default.yaml``: ``base``, or ``cnn`` with the deep extra).
    """
    if hierarchy is True:
        hierarchy_config = HierarchyConfig.from_dict({})
    elif isinstance(hierarchy, str):
        hierarchy_config = HierarchyConfig.from_dict({"cut": hierarchy})
    elif isinstance(hierarchy, dict):
        hierarchy_config = HierarchyConfig.from_dict(hierarchy)
    else:
        hierarchy_config = HierarchyConfig()
    if isinstance(features, str):
        feature_config = FeatureConfig.from_dict({"name": features})
    else:
        feature_config = FeatureConfig.from_dict({"name": "custom", "blocks": features})
    config = Config(
        seed=seed,
        backend=backend,
        data=DataConfig(),
        features=feature_config,
        scaler=ScalerConfig.from_dict({"name": scaler, "scope": scaler_scope}),
        cluster=ClusterConfig.from_dict({"algorithm": algorithm, **params}),
        metrics=MetricsConfig(
            silhouette_max_exact=silhouette_max_exact,
            silhouette_sample_size=silhouette_sample_size,
            silhouette_reference_size=silhouette_reference_size,
        ),
        tune=TuneConfig(),
        render=RenderConfig(),
        regions=RegionsConfig.from_dict(
            {"method": regions} if isinstance(regions, str) else regions
        ),
        smoothing=SmoothingConfig.from_dict(
            {"method": smoothing} if isinstance(smoothing, str) else smoothing
        ),
        hierarchy=hierarchy_config,
        boundaries={**preset("boundaries", "default"), "model": boundary_model},
    )
    return segment_with(image, config, hierarchy=bool(hierarchy))


def learned_probability(image: np.ndarray, config: Config) -> np.ndarray:
    """The learned boundary probability of ``image`` at the working size, with the model of
    ``config.boundaries`` (``models/boundaries_<model>.npz`` under the working folder, else
    under the checkout), as the ``boundaries`` stage makes it."""
    from segclust.boundary_maps import boundary_maps
    from segclust.boundary_model import BoundariesConfig, check_spec, load_model
    from segclust.presets import conf_dir

    settings = BoundariesConfig.from_dict(config.boundaries)
    path = settings.model_path()
    if not path.is_file():
        path = conf_dir().parent / path
    model = load_model(path, "dvc repro train_boundaries")
    check_spec(model, settings.models[settings.model], path, settings.model)
    device = "cpu"
    if model.spec.cues.cnn_stages:
        from segclust.learned import resolve_device

        device = resolve_device(settings.device, "boundaries")
    return boundary_maps(image, model, settings, device)[0]


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The validated pipeline config that ``dvc exp run -S <overrides>`` would run, e.g.
    ``compose_config(["+experiment=seed"])`` or ``compose_config(["features=lab_xy"])``."""
    return Config.from_dict(compose_params(overrides))


def segment_with(image: np.ndarray, config: Config, *, hierarchy: bool = False) -> Segmentation:
    """Segment one image with a whole pipeline config (the configured, untuned clustering):
    smoothing, features, scaler, cluster, metrics, regions, back-end and seed as the stages
    use them; with ``hierarchy=True`` the segments are the cut of ``config.hierarchy``, as
    the ``hierarchy`` stage makes it (its cluster leaves are the configured clusters here)."""
    image = np.asarray(image)
    matrix, names = feature_matrix(
        smooth_image(image, config.smoothing), config.features, config.scaler
    )
    result = cluster_and_score(
        matrix,
        image.shape[:2],
        config.cluster,
        backend=config.backend,
        seed=config.seed,
        metrics=config.metrics,
        feature_names=names,
    )
    if not hierarchy:
        segments = segments_for(result.labels, config.regions)
        return Segmentation(result.labels, result.metrics, result.feature_names, segments)
    leaves = result.labels if config.hierarchy.leaves == "clusters" else None
    learned = config.hierarchy.edges == "learned"
    probability = learned_probability(image, config) if learned else None
    tree = build_hierarchy(image, config.smoothing, config.hierarchy, leaves, probability)
    segments = cut_hierarchy(tree, config.hierarchy)
    return Segmentation(result.labels, result.metrics, result.feature_names, segments, tree)
