"""The one seam between an algorithm name + parameters and an estimator on a back-end.

scikit-learn runs everything on the CPU. RAPIDS cuML (``cuml.cluster.KMeans``,
``cuml.cluster.DBSCAN``, ``cuml.cluster.HDBSCAN``, cuML 26.x API) runs the algorithms whose
registry entry (:mod:`segclust.algorithms`) names a cuML estimator, on an NVIDIA GPU, when it
is installed and sees one. Only the clustering moves to the GPU: the scores
(:mod:`segclust.metrics`) are always computed on the CPU by the same exact or seeded code, so
the same labels give the same metrics on every machine.

``backend``:
``sklearn``
    always scikit-learn.
``cuml``
    cuML or a one-line error if it cannot run here; never a silent fallback. An algorithm
    cuML lacks (BIRCH, MiniBatchKMeans, Ward) runs on scikit-learn, says so, and the metrics
    record ``backend: sklearn``.
``auto``
    cuML when it imports and sees a GPU, else scikit-learn.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from segclust.algorithms import FitContext, get_algorithm
from segclust.config import BACKENDS
from segclust.errors import BackendUnavailableError

log = logging.getLogger(__name__)


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
    if requested not in BACKENDS:
        raise BackendUnavailableError(
            f"backend: unknown value {requested!r}; allowed: {', '.join(BACKENDS)}"
        )
    entry = get_algorithm(algorithm)
    available, reason = cuml_status()
    if requested == "cuml" and not available:
        raise BackendUnavailableError(
            f"backend=cuml was asked for but {reason}; install RAPIDS cuML on a machine with "
            "an NVIDIA GPU, or use backend=auto (falls back to scikit-learn) or backend=sklearn"
        )
    if not available:
        return "sklearn", None
    if entry.cuml is None:
        return "sklearn", f"cuML has no {algorithm}; it ran on scikit-learn"
    return "cuml", None


def make_estimator(
    algorithm: str,
    params: Mapping[str, Any],
    backend: str,
    seed: int,
    shape: tuple[int, int] | None = None,
) -> Any:
    """A fresh, unfitted estimator with scikit-learn's ``fit_predict`` API."""
    return get_algorithm(algorithm).make(params, backend, FitContext(seed=seed, shape=shape))
