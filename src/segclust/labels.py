"""Label maps: the noise label and a numbering that does not depend on the estimator.

Shared by clustering, regions, metrics and rendering, so each reads the one definition.
NumPy only.
"""

from __future__ import annotations

import numpy as np

NOISE = -1  # DBSCAN / HDBSCAN noise, and pixels no segment claims


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by decreasing size (ties: smaller old label first).

    Makes labels independent of an estimator's arbitrary numbering, so that colours and
    files are stable; noise stays -1.

    >>> relabel_by_size(np.array([5, 5, -1, 2, 5, 2, 9]))
    array([ 0,  0, -1,  1,  0,  1,  2], dtype=int32)
    """
    labels = np.asarray(labels)
    if labels.size == 0 or labels.max() == NOISE:
        return np.full(labels.shape, NOISE, dtype=np.int32)
    if labels.min() < NOISE:
        raise ValueError("labels must be >= -1")
    sizes = np.bincount(labels.ravel() + 1)[1:]  # O(N): labels are small cluster numbers
    old = np.flatnonzero(sizes)
    order = np.lexsort((old, -sizes[old]))
    mapping = np.full(int(old.max()) + 2, NOISE, dtype=np.int32)  # slot 0 is noise
    mapping[old[order] + 1] = np.arange(len(old), dtype=np.int32)
    return mapping[labels + 1]
