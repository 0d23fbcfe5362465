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
    :func:`segclust.silhouette.silhouette_estimate`: the mean over ``repeats`` seeded samples
    of ``sample_size`` pixels, with its standard error in ``silhouette_stderr``.

Either way the value equals, or estimates, scikit-learn's ``silhouette_score`` on all pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segclust.backends import silhouette
from segclust.config import MetricsConfig
from segclust.silhouette import silhouette_1d, silhouette_estimate, weighted_silhouette

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
    repeats: int = MetricsConfig.silhouette_repeats,
    backend: str = "sklearn",
) -> dict[str, Any]:
    """Scores of ``labels`` (N,) on ``features`` (N×d); JSON-ready dict.

    Keys: ``n_clusters``, ``noise_fraction``, ``silhouette``, ``silhouette_method``
    (``exact`` / ``sampled`` / ``undefined``), ``silhouette_sample_size`` (pixels scored),
    ``silhouette_stderr`` (0 when exact),
    ``calinski_harabasz``, ``davies_bouldin`` and, when undefined, ``undefined_reason``.
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
    x_valid, l_valid = features[valid], labels[valid]
    result["calinski_harabasz"] = rounded(calinski_harabasz_score(x_valid, l_valid))
    result["davies_bouldin"] = rounded(davies_bouldin_score(x_valid, l_valid))

    value, stderr, method, scored = _silhouette(
        x_valid,
        l_valid,
        seed=seed,
        max_exact=max_exact,
        sample_size=sample_size,
        repeats=repeats,
        backend=backend,
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
) -> dict[str, Any]:
    """:func:`cluster_metrics` with the silhouette settings of the ``metrics`` config group."""
    return cluster_metrics(
        features,
        labels,
        seed=seed,
        max_exact=config.silhouette_max_exact,
        sample_size=config.silhouette_sample_size,
        repeats=config.silhouette_repeats,
        backend=backend,
    )


def _silhouette(
    x: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    max_exact: int,
    sample_size: int,
    repeats: int,
    backend: str,
) -> tuple[float | None, float | None, str, int]:
    """(value, standard error, method or reason, pixels scored) for non-noise pixels.

    The standard error is 0 when the value is exact and None when it is unknown.
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
    keyed = np.concatenate([x.astype(np.float64), labels[:, None].astype(np.float64)], axis=1)
    pairs, counts = np.unique(keyed, axis=0, return_counts=True)
    if pairs.shape[0] <= max_exact:
        value = weighted_silhouette(pairs[:, :-1], counts, pairs[:, -1].astype(np.int64))
        return value, 0.0, "exact", n
    if sample_size >= n:  # a "sample" would be every pixel: score them all, exactly
        return silhouette(x, labels, backend), 0.0, "exact", n
    try:
        value, stderr = silhouette_estimate(
            x, labels, sample_size=sample_size, n_repeats=repeats, seed=seed
        )
    except ValueError as exc:  # a sample with a single cluster
        return None, None, f"silhouette sample: {exc}", 0
    return value, stderr, "sampled", sample_size * repeats


def _undefined_reason(n_clusters: int, n_valid: int, n_total: int) -> str | None:
    if n_valid == 0:
        return f"all {n_total} points are noise"
    if n_clusters < 2:
        return f"only {n_clusters} cluster; scores need at least 2"
    if n_clusters >= n_valid:
        return f"{n_clusters} clusters for {n_valid} points; scores need fewer clusters"
    return None
