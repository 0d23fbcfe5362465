"""Region scores of a flat segmentation against human segmentations (BSDS500 style).

NumPy does the heavy lifting: every score of a (segmentation, annotation) pair is read off one
dense contingency table, built in a single ``np.bincount`` pass over the pixels, so nothing
loops over pixels or pixel pairs in Python. Pair counts are kept as exact integers (int64
arrays, Python ints for products that could overflow), so the Rand indices match
scikit-learn's to the last bit; entropies use the natural log (BSDS's own code uses log2).

Labels are arbitrary integers; -1 (noise) is just another label value here, so a segmentation
with noise points is scored as if the noise were one more region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Above this many cells a direct offset table would be mostly empty: factorise labels first.
_MAX_DIRECT_CELLS_PER_PIXEL = 4
# A dense int64 table larger than this (1 GiB) is refused rather than risking the memory.
_MAX_TABLE_CELLS = 2**27


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"label maps differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError("label maps are empty")
    for name, arr in (("first", a), ("second", b)):
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
            raise ValueError(f"{name} label map must hold integers, not {arr.dtype}")
    return a.ravel().astype(np.int64, copy=False), b.ravel().astype(np.int64, copy=False)


def _codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels as codes 0..k-1 (may leave unused codes when the range is compact)."""
    lo, hi = int(x.min()), int(x.max())
    span = hi - lo + 1
    if span <= x.size:
        return x - lo, span  # no sort needed: unused codes become empty rows, dropped later
    _, inverse = np.unique(x, return_inverse=True)
    return inverse.ravel(), int(inverse.max()) + 1


def contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense table ``n[i, j]`` = pixels with the i-th label of ``a`` and the j-th label of ``b``.

    Rows and columns follow the sorted labels present in ``a`` and ``b`` (absent labels get no
    row or column). Labels may be any integers, -1 included. It is dense: its size is
    (regions in ``a``) × (regions in ``b``), which is small for segmentations worth scoring.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (k_a, k_b); it sums to ``a.size``.
    """
    a, b = _check_pair(a, b)
    ca, ka = _codes(a)
    cb, kb = _codes(b)
    if ka * kb > _MAX_DIRECT_CELLS_PER_PIXEL * a.size + 1024:
        # sparse range even after compaction: factorise both sides exactly
        _, ca = np.unique(a, return_inverse=True)
        _, cb = np.unique(b, return_inverse=True)
        ca, cb = ca.ravel(), cb.ravel()
        ka, kb = int(ca.max()) + 1, int(cb.max()) + 1
    if ka * kb > _MAX_TABLE_CELLS:
        raise ValueError(
            f"contingency table of {ka} × {kb} regions is too large to hold densely;"
            " these label maps look like per-pixel labels, not segmentations"
        )
    table = np.bincount(ca * kb + cb, minlength=ka * kb).reshape(ka, kb)
    return table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]


def _comb2(x: np.ndarray) -> int:
    """Sum of C(x, 2) over the entries, exact."""
    x = np.asarray(x, dtype=np.int64)
    return int((x * (x - 1) // 2).sum())


def _pair_counts(table: np.ndarray) -> tuple[int, int, int, int]:
    """Unordered pair counts (same-same, same-diff, diff-same, diff-diff) as Python ints."""
    n = int(table.sum())
    both = _comb2(table)
    same_a = _comb2(table.sum(axis=1))
    same_b = _comb2(table.sum(axis=0))
    total = n * (n - 1) // 2
    return both, same_a - both, same_b - both, total - same_a - same_b + both


def _rand_from_table(table: np.ndarray) -> float:
    tp, fp, fn, tn = _pair_counts(table)
    total = tp + fp + fn + tn
    if total == 0 or tp + tn == total:
        return 1.0  # one pixel, or identical partitions
    return (tp + tn) / total


def _ari_from_table(table: np.ndarray) -> float:
    tp, fp, fn, tn = _pair_counts(table)
    if fp == 0 and fn == 0:
        return 1.0  # identical partitions (also the 0/0 cases: one region, all singletons)
    # Python ints: tp * tn reaches ~1e20 for a 481×321 image, past int64
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


def _xlogx_sum(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[x > 0]
    return float((x * np.log(x)).sum())


def _vi_from_table(table: np.ndarray) -> float:
    n = float(table.sum())
    # VI = H(A|B) + H(B|A) = 2 H(A,B) - H(A) - H(B), written in counts
    vi = (
        _xlogx_sum(table.sum(axis=1)) + _xlogx_sum(table.sum(axis=0)) - 2.0 * _xlogx_sum(table)
    ) / n
    return max(vi, 0.0)  # rounding can leave -1e-16 for identical partitions


def _covering_from_table(table: np.ndarray) -> float:
    """Rows are our regions S, columns the reference regions R."""
    size_s = table.sum(axis=1, keepdims=True)
    size_r = table.sum(axis=0, keepdims=True)
    iou = table / (size_s + size_r - table)  # union >= 1 wherever a region exists
    n = float(table.sum())
    return float((size_r.ravel() * iou.max(axis=0)).sum() / n)


def rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixel pairs on which ``a`` and ``b`` agree (same region or not).

    Symmetric, 1.0 for identical partitions; the mean over annotators is the
    Probabilistic Rand Index of the BSDS benchmark.
    """
    return _rand_from_table(contingency(a, b))


def adjusted_rand_index(a: np.ndarray, b: np.ndarray) -> float:
    """Rand index corrected for chance (Hubert & Arabie): 0 for independent labelings.

    Worth reporting beside the Rand index, which is close to 1 for almost any pair of
    segmentations of a natural image because most pixel pairs lie in different regions.
    """
    return _ari_from_table(contingency(a, b))


def variation_of_information(a: np.ndarray, b: np.ndarray) -> float:
    """VI = H(A|B) + H(B|A) in nats (natural log); lower is better, 0 only for equal partitions.

    Published BSDS figures (e.g. 1.17 human vs human) are in bits: the Berkeley benchmark code
    uses log2. Divide by ln 2 before comparing with them.
    """
    return _vi_from_table(contingency(a, b))


def segmentation_covering(seg: np.ndarray, gt: np.ndarray) -> float:
    """Covering of the reference ``gt`` by ``seg``: sum over R in gt of |R|/N · max_S IoU(R, S).

    The BSDS "Covering" score. It is asymmetric: each reference region looks for its best
    match among ours, so over-segmenting ``seg`` is punished and extra detail in ``gt`` is too,
    but not in the same way as swapping the arguments would.
    """
    return _covering_from_table(contingency(seg, gt))


def table_scores(tables: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean scores over annotators of one contingency table each (rows: the segmentation's
    regions, columns: the annotator's), as :func:`compare_to_annotators` returns them.

    Apart from the tables, so that tables made another way (merged from finer ones, as
    :func:`segclust.levels.region_scores_by_level` does) are scored by the same arithmetic.
    """
    if len(tables) == 0:
        raise ValueError("no annotations to compare against")
    scores: dict[str, list[float]] = {"pri": [], "vi": [], "covering": [], "ari": []}
    for table in tables:
        scores["pri"].append(_rand_from_table(table))
        scores["vi"].append(_vi_from_table(table) / math.log(2))
        scores["covering"].append(_covering_from_table(table))
        scores["ari"].append(_ari_from_table(table))
    result = {key: float(np.mean(values)) for key, values in scores.items()}
    result["n_annotators"] = len(tables)
    return result


def compare_to_annotators(seg: np.ndarray, annotations: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean scores of ``seg`` over several human segmentations of the same image.

    One contingency table per annotator feeds all four scores (:func:`table_scores`).
    Returns the keys ``pri`` (mean Rand index = Probabilistic Rand Index), ``vi`` (in
    **bits**, like the published BSDS tables and the Berkeley benchmark code, so the numbers
    compare directly), ``covering``, ``ari`` and ``n_annotators``.

    Raises
    ------
    ValueError
        If there are no annotations or one differs in shape from ``seg``.
    """
    seg = np.asarray(seg)
    if len(annotations) == 0:
        raise ValueError("no annotations to compare against")
    tables = []
    for k, gt in enumerate(annotations):
        gt = np.asarray(gt)
        if gt.shape != seg.shape:
            raise ValueError(
                f"annotation {k} has shape {gt.shape} but the segmentation has {seg.shape}"
            )
        tables.append(contingency(seg, gt))
    return table_scores(tables)
