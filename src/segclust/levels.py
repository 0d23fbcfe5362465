"""Every level of a region hierarchy scored against people, as the BSDS500 benchmark does.

A hierarchy is scored over a grid of thresholds (cut heights): **ODS** (optimal dataset
scale) is the best score of one threshold shared by every image, **OIS** (optimal image
scale) the mean of each image's best threshold — an upper bound that peeks at the ground
truth per image, reported beside the fixed cut, never used to choose it. As in Berkeley's
``collect_eval_reg.m``, each score picks its own best threshold (Covering and PRI the
highest, VI the lowest). NumPy does the work; the per-cut scores are those of
:func:`segclust.evaluation.compare_to_annotators`.

>>> import numpy as np
>>> scores = np.array([[[0.5, 0.8, 2.0], [0.7, 0.9, 1.0]],     # image 0: threshold 1 better
...                    [[0.65, 0.7, 1.5], [0.4, 0.6, 2.5]]])    # image 1: threshold 0 better
>>> summary = region_ods_ois(scores, np.array([10.0, 20.0]))
>>> round(summary["ods"]["covering"], 3), summary["ods"]["covering_threshold"]
(0.575, 10.0)
>>> round(summary["ois"]["covering"], 3)
0.675
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from segclust.evaluation import contingency, table_scores
from segclust.hierarchy import Hierarchy

REGION_SCORES = ("covering", "pri", "vi")
_HIGHER_IS_BETTER = {"covering": True, "pri": True, "vi": False}
# The merge heights every hierarchy is scored at, per boundary cue (``hierarchy.edges``):
# learned heights are probabilities mixed with L*a*b*/100 colour distances, the hand-made
# ones L*a*b* units. A fixed grid keeps each image's level scores its own: adding a photo
# rescores only it, and nobody reads every other photo's UCM to place the levels.
LEVEL_RANGES = {"learned": (0.01, 1.2), "gradient": (1.0, 150.0)}


def threshold_grid(low: float, high: float, n: int) -> np.ndarray:
    """``n`` thresholds spaced evenly in log between ``low`` and ``high`` (> 0): merge heights
    are heavy-tailed, so a linear grid would spend most levels on a few coarse cuts."""
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got {low} and {high}")
    return np.geomspace(low, high, n)


def evaluation_levels(edges: str, n: int) -> np.ndarray:
    """The ``n`` heights (log-spaced over :data:`LEVEL_RANGES`) a hierarchy on the boundary
    cue ``edges`` is scored at.

    >>> evaluation_levels("learned", 3).round(3).tolist()
    [0.01, 0.11, 1.2]
    """
    return threshold_grid(*LEVEL_RANGES[edges], n)


def region_scores_by_level(
    hierarchy: Hierarchy, annotations: Sequence[np.ndarray], thresholds: np.ndarray
) -> np.ndarray:
    """Covering, PRI and VI (bits) of the cut at each threshold, means over annotators.

    The same numbers as :func:`segclust.evaluation.compare_to_annotators` of each
    ``hierarchy.cut(threshold)``, without cutting the image per level: the levels are nested,
    so each annotator's contingency table with the finest cut is counted once, and every
    level's table is its rows summed by region (:meth:`Hierarchy.nested_cuts` says which,
    in the cut's own row order, so that the floating-point sums run as they did).

    Returns
    -------
    numpy.ndarray
        float64 (len(thresholds), 3), columns in :data:`REGION_SCORES` order.
    """
    if len(annotations) == 0:
        raise ValueError("no annotations to compare against")
    base, labels = hierarchy.nested_cuts(thresholds)
    for k, gt in enumerate(annotations):
        if np.shape(gt) != base.shape:
            raise ValueError(
                f"annotation {k} has shape {np.shape(gt)} but the segmentation has {base.shape}"
            )
    # every annotator's table side by side: one merge per level serves them all
    tables = [contingency(base, gt) for gt in annotations]
    if tables[0].shape[0] != labels.shape[1]:
        # merge_rows indexes the finest cut's regions by row: each must have a pixel
        raise ValueError("the finest cut of the hierarchy has regions without pixels")
    cuts = np.cumsum([table.shape[1] for table in tables])[:-1]
    joined = np.hstack(tables)
    out = np.empty((len(labels), len(REGION_SCORES)))
    for t, regions in enumerate(labels):
        merged = np.split(merge_rows(joined, regions), cuts, axis=1)
        scores = table_scores([np.ascontiguousarray(table) for table in merged])
        out[t] = [scores[name] for name in REGION_SCORES]
    return out


def merge_rows(table: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The contingency table of a coarser segmentation: row ``r`` of ``table`` added into
    row ``labels[r]`` (labels 0..k-1, every one used; integer sums, exact).

    >>> merge_rows(np.array([[1, 0], [2, 3], [0, 4]]), np.array([1, 0, 1]))
    array([[2, 3],
           [1, 4]])
    """
    order = np.argsort(labels, kind="stable")
    starts = np.flatnonzero(np.diff(labels[order], prepend=-1))
    return np.add.reduceat(table[order], starts, axis=0)


def region_ods_ois(scores: np.ndarray, thresholds: np.ndarray) -> dict[str, dict[str, float]]:
    """ODS and OIS of per-image level scores.

    Parameters
    ----------
    scores : numpy.ndarray
        (n_images, n_thresholds, 3) from :func:`region_scores_by_level`.
    thresholds : numpy.ndarray
        The thresholds of the second axis.

    Returns
    -------
    dict
        ``{"ods": {score: value, score_threshold: t, ...}, "ois": {score: value, ...}}``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 3 or scores.shape[1] != len(thresholds) or scores.shape[0] == 0:
        raise ValueError(f"scores must be (images, {len(thresholds)}, 3), got {scores.shape}")
    ods: dict[str, float] = {}
    ois: dict[str, float] = {}
    mean = scores.mean(axis=0)
    for k, name in enumerate(REGION_SCORES):
        pick = np.argmax if _HIGHER_IS_BETTER[name] else np.argmin
        best = int(pick(mean[:, k]))
        ods[name] = float(mean[best, k])
        ods[f"{name}_threshold"] = float(thresholds[best])
        per_image = (
            scores[:, :, k].max(axis=1) if _HIGHER_IS_BETTER[name] else scores[:, :, k].min(axis=1)
        )
        ois[name] = float(per_image.mean())
    return {"ods": ods, "ois": ois}
