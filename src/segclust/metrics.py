"""Internal quality scores of a clustering, on scikit-learn's metrics.

Noise points (label -1) are left out of every score. With fewer than two clusters the
scores are undefined: they are ``None`` and ``undefined_reason`` says why. The silhouette
is O(N²) in time, so above ``max_exact`` points it is computed on a seeded uniform sample
and the method and sample size are recorded beside the value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

from segclust.backends import silhouette

NOISE = -1


def _rounded(value: float) -> float:
    """Round to 6 significant digits: stable JSON across runs, readable in ``dvc exp show``."""
    return float(f"{value:.6g}")


def cluster_metrics(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    max_exact: int = 5000,
    sample_size: int = 5000,
    backend: str = "sklearn",
) -> dict[str, Any]:
    """Scores of ``labels`` (N,) on ``features`` (N×d); JSON-ready dict.

    Keys: ``n_clusters``, ``noise_fraction``, ``silhouette``, ``silhouette_method``
    (``exact`` / ``sampled`` / ``undefined``), ``silhouette_sample_size``,
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
        "noise_fraction": _rounded(1.0 - n_valid / labels.size),
        "silhouette": None,
        "silhouette_method": "undefined",
        "silhouette_sample_size": 0,
        "calinski_harabasz": None,
        "davies_bouldin": None,
    }
    reason = _undefined_reason(cluster_ids.size, n_valid, labels.size)
    if reason:
        result["undefined_reason"] = reason
        return result
    x_valid, l_valid = features[valid], labels[valid]
    result["calinski_harabasz"] = _rounded(calinski_harabasz_score(x_valid, l_valid))
    result["davies_bouldin"] = _rounded(davies_bouldin_score(x_valid, l_valid))

    if n_valid <= max_exact:
        method, x_s, l_s = "exact", x_valid, l_valid
    else:
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n_valid, size=min(sample_size, n_valid), replace=False))
        method, x_s, l_s = "sampled", x_valid[pick], l_valid[pick]
    n_in_sample = np.unique(l_s).size
    if n_in_sample < 2 or n_in_sample >= l_s.size:
        result["undefined_reason"] = (
            f"silhouette sample of {l_s.size} points holds {n_in_sample} cluster(s); need 2 to n-1"
        )
        return result
    result["silhouette"] = _rounded(silhouette(x_s, l_s, backend))
    result["silhouette_method"] = method
    result["silhouette_sample_size"] = int(l_s.size)
    return result


def _undefined_reason(n_clusters: int, n_valid: int, n_total: int) -> str | None:
    if n_valid == 0:
        return f"all {n_total} points are noise"
    if n_clusters < 2:
        return f"only {n_clusters} cluster; scores need at least 2"
    if n_clusters >= n_valid:
        return f"{n_clusters} clusters for {n_valid} points; scores need fewer clusters"
    return None
