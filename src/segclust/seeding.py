"""k-means++ seeding equal to scikit-learn's bit for bit, without its float32 batches.

scikit-learn's ``KMeans`` seeds each of its ``n_init`` starts with k-means++. On float32 rows
every distance call of that seeding (one per centre) upcasts the rows to float64 afresh, in
batches of about a thousand rows, each with its own norms and product: on the 20,000 rows a
BSDS photo is tuned on, that was over half of a fit's time. :class:`KMeansPlusPlus` is a
``KMeans(init=...)`` callable that upcasts the rows and their norms once per call and
computes a centre's distances to every row in one product.

The numbers are the same: each distance is computed by the same operations on the same
values, and an entry of the product does not depend on the batch it is computed in (float32
values upcast multiply exactly in float64, so even NumPy's matrix-vector path for a batch of
one row sums the same terms in the same order). The tests compare the centres with
``sklearn.cluster.kmeans_plusplus`` (one-row last batches included) and the fits with
``KMeans(init="k-means++")``. Rows of another dtype are seeded by ``kmeans_plusplus`` itself.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.extmath import row_norms


class KMeansPlusPlus:
    """``KMeans(init=KMeansPlusPlus(w))``: scikit-learn's k-means++ centres for a fit with
    ``sample_weight=w`` (scikit-learn does not hand an init callable the weights)."""

    def __init__(self, sample_weight: np.ndarray | None = None) -> None:
        self.sample_weight = sample_weight

    def __call__(
        self, x: np.ndarray, n_clusters: int, random_state: np.random.RandomState
    ) -> np.ndarray:
        if self.sample_weight is None:
            weight = np.ones(x.shape[0], dtype=x.dtype)
        else:
            weight = np.asarray(self.sample_weight, dtype=x.dtype)
            if weight.shape != (x.shape[0],):
                raise ValueError(f"{weight.shape[0]} weights for {x.shape[0]} rows")
        if x.dtype != np.float32:  # scikit-learn computes these in one product already
            from sklearn.cluster import kmeans_plusplus

            centers, _ = kmeans_plusplus(
                x, n_clusters, sample_weight=weight, random_state=random_state
            )
            return centers
        return kmeans_plusplus_float32(x, n_clusters, weight, random_state)


def kmeans_plusplus_float32(
    x: np.ndarray, n_clusters: int, weight: np.ndarray, random_state: np.random.RandomState
) -> np.ndarray:
    """scikit-learn's ``_kmeans_plusplus`` on float32 rows (greedy, 2 + log k candidates per
    centre, drawn by ``random_state`` in the same order), distances from :class:`_Upcast`."""
    n_rows = x.shape[0]
    rows = _Upcast(x)
    centers = np.empty((n_clusters, x.shape[1]), dtype=x.dtype)
    n_local_trials = 2 + int(np.log(n_clusters))
    center_id = random_state.choice(n_rows, p=weight / weight.sum())
    centers[0] = x[center_id]
    closest_dist_sq = rows.squared_distances(np.array([center_id]))
    current_pot = closest_dist_sq @ weight
    for c in range(1, n_clusters):
        rand_vals = random_state.uniform(size=n_local_trials) * current_pot
        candidate_ids = np.searchsorted(np.cumsum(weight * closest_dist_sq), rand_vals)
        np.clip(candidate_ids, None, closest_dist_sq.size - 1, out=candidate_ids)
        distance_to_candidates = rows.squared_distances(candidate_ids)
        np.minimum(closest_dist_sq, distance_to_candidates, out=distance_to_candidates)
        candidates_pot = distance_to_candidates @ weight.reshape(-1, 1)
        best = np.argmin(candidates_pot)
        current_pot = candidates_pot[best]
        closest_dist_sq = distance_to_candidates[best]
        centers[c] = x[candidate_ids[best]]
    return centers


class _Upcast:
    """Squared distances from a few rows to every row, as scikit-learn's float32 path gives
    them (float64 arithmetic, float32 result, clipped at 0), with the rows upcast once."""

    def __init__(self, x: np.ndarray) -> None:
        self.rows = x.astype(np.float64)
        self.norms = row_norms(self.rows, squared=True)

    def squared_distances(self, ids: np.ndarray) -> np.ndarray:
        some = self.rows[ids]
        some_norms = row_norms(some, squared=True)[:, None]
        d = -2 * (some @ self.rows.T)
        d += some_norms
        d += self.norms[None, :]
        distances = d.astype(np.float32)
        np.maximum(distances, np.float32(0), out=distances)
        return distances
