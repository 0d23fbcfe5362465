"""The one seam between an algorithm name + parameters and an estimator.

scikit-learn runs everything on the CPU. RAPIDS cuML (``cuml.cluster.KMeans``,
``cuml.cluster.DBSCAN``, ``cuml.metrics.cluster.silhouette_score``, cuML 26.x API) runs
KMeans and DBSCAN on an NVIDIA GPU when it is installed and sees one.

``backend``:
``sklearn``
    always scikit-learn.
``cuml``
    cuML or a one-line error if it cannot run here; never a silent fallback. cuML has no
    BIRCH, so BIRCH runs on scikit-learn, says so, and the metrics record it.
``auto``
    cuML when it imports and sees a GPU, else scikit-learn.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from segclust.errors import BackendUnavailableError

log = logging.getLogger(__name__)

CUML_ALGORITHMS = ("kmeans", "dbscan")


@functools.cache
def cuml_status() -> tuple[bool, str]:
    """Whether cuML can run here, and why not. Cached: the import is slow."""
    try:
        import cuml  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - without a driver cuML fails in many ways
        return False, f"cuML does not import ({type(exc).__name__}: {exc})".splitlines()[0]
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001
        return False, f"no usable CUDA device ({type(exc).__name__}: {exc})".splitlines()[0]
    if count < 1:
        return False, "no CUDA device is visible"
    return True, f"cuML with {count} CUDA device(s)"


def resolve_backend(requested: str, algorithm: str) -> tuple[str, str | None]:
    """The back-end that will actually run ``algorithm``, and a note when it differs.

    Raises :class:`BackendUnavailableError` when cuML is requested but cannot run.
    """
    if requested == "sklearn":
        return "sklearn", None
    if requested not in ("auto", "cuml"):
        raise BackendUnavailableError(
            f"backend: unknown value {requested!r}; allowed: auto, sklearn, cuml"
        )
    available, reason = cuml_status()
    if requested == "cuml" and not available:
        raise BackendUnavailableError(
            f"backend=cuml was asked for but {reason}; install RAPIDS cuML on a machine with "
            "an NVIDIA GPU, or use backend=auto (falls back to scikit-learn) or backend=sklearn"
        )
    if not available:
        return "sklearn", None
    if algorithm not in CUML_ALGORITHMS:
        return "sklearn", f"cuML has no {algorithm}; it ran on scikit-learn"
    return "cuml", None


def make_estimator(algorithm: str, params: dict[str, Any], backend: str, seed: int) -> Any:
    """A fresh, unfitted estimator with scikit-learn's ``fit_predict`` API."""
    if backend == "cuml":
        return _make_cuml(algorithm, params, seed)
    from sklearn.cluster import DBSCAN, Birch, KMeans

    if algorithm == "kmeans":
        return KMeans(
            n_clusters=params["n_clusters"],
            n_init=params["n_init"],
            max_iter=params["max_iter"],
            random_state=seed,
        )
    if algorithm == "birch":
        return Birch(
            n_clusters=params["n_clusters"],
            threshold=params["threshold"],
            branching_factor=params["branching_factor"],
        )
    if algorithm == "dbscan":
        return DBSCAN(eps=params["eps"], min_samples=params["min_samples"])
    raise ValueError(f"unknown algorithm {algorithm!r}")


def _make_cuml(algorithm: str, params: dict[str, Any], seed: int) -> Any:
    from cuml.cluster import DBSCAN, KMeans

    if algorithm == "kmeans":
        return KMeans(
            n_clusters=params["n_clusters"],
            n_init=params["n_init"],
            max_iter=params["max_iter"],
            random_state=seed,
            output_type="numpy",
        )
    if algorithm == "dbscan":
        return DBSCAN(eps=params["eps"], min_samples=params["min_samples"], output_type="numpy")
    raise ValueError(f"cuML has no {algorithm}")


def grid_dbscan(features: Any, eps: float, min_samples: int) -> Any | None:
    """Exact DBSCAN with the grid-based ``dbscan`` package (Wang, Gu, Shun), or None.

    Same core points and noise as scikit-learn's DBSCAN (border points may join another
    adjacent cluster), without scikit-learn's per-point neighbourhood lists, which take
    tens of GB on a photo's continuous features. It has no ``sample_weight`` and takes 2 to
    20 dimensions: None tells the caller to use scikit-learn.
    """
    import numpy as np

    try:
        import dbscan
    except ImportError:
        return None
    if not dbscan.DBSCAN_MIN_DIMS <= features.shape[1] <= dbscan.DBSCAN_MAX_DIMS:
        return None
    labels, _core = dbscan.DBSCAN(
        np.ascontiguousarray(features, dtype=np.float64),
        eps=float(eps),
        min_samples=int(min_samples),
    )
    return labels


def supports_sample_weight(algorithm: str) -> bool:
    """KMeans and DBSCAN take ``sample_weight`` on both back-ends; BIRCH does not."""
    return algorithm in ("kmeans", "dbscan")


def silhouette(features: Any, labels: Any, backend: str) -> float:
    """Silhouette score on the given (already sampled) points, on the chosen back-end."""
    if backend == "cuml":
        from cuml.metrics.cluster import silhouette_score as cuml_silhouette

        return float(cuml_silhouette(features, labels))
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(features, labels))
