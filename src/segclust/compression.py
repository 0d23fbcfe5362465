"""Exact compression of a feature matrix into its distinct rows and their counts.

Pixels repeat feature rows (an 8-bit grey image has at most 256 distinct values), and
clustering the distinct rows weighted by their counts is the same objective as clustering
every pixel. Finding the distinct rows must itself be cheap at 12 megapixels, so rows are
turned into one 64-bit key each and NumPy's SIMD ``np.sort`` does the work (about 0.3 s for
12 M keys on one core; ``np.unique(axis=0)`` takes tens of seconds there):

* rows of at most 8 bytes (one or two float32 columns, one float64) pack *exactly* into
  their bit patterns;
* wider rows are hashed (multiply-xorshift over the 32-bit words). A collision would merge
  two different rows, so the compressed result is verified against the input and, in the
  (≈ N²/2⁶⁴) case of a collision, recomputed with ``np.unique(axis=0)``.

Only when there are few distinct keys is the inverse index computed (a ``searchsorted``
over the sorted distinct keys), so asking "does compression pay?" costs one sort.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Compress only when it removes at least half of the rows.
DEFAULT_MAX_DISTINCT_FRACTION = 0.5

# Table lookup of keys (see _lookup): at most this many keys, table slots and tries.
_MAX_TABLE_KEYS = 4096
_MAX_TABLE_SIZE = 1 << 22
_MODULUS_TRIES = 32

_MIX_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant (Fibonacci hashing)
_FINAL_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser


@dataclass(frozen=True)
class RowCompression:
    """``rows[inverse]`` equals the input; ``counts[i]`` pixels have row ``rows[i]``."""

    rows: np.ndarray
    inverse: np.ndarray
    counts: np.ndarray

    @property
    def n_distinct(self) -> int:
        return int(self.rows.shape[0])


def _words(features: np.ndarray) -> np.ndarray:
    """The rows' bits as unsigned words (N×w), with -0.0 turned into +0.0 first."""
    x = np.ascontiguousarray(features)
    if x.ndim != 2:
        raise ValueError(f"expected an N×d feature matrix, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating):
        x = x + x.dtype.type(0)  # -0.0 + 0.0 == +0.0: equal values get equal bits
        word = np.uint32 if x.dtype.itemsize == 4 else np.uint64
        if x.dtype.itemsize not in (4, 8):
            x, word = x.astype(np.float32), np.uint32
        return x.view(word)
    if x.dtype.kind in "iu" and x.dtype.itemsize in (4, 8):
        return x.view(np.uint32 if x.dtype.itemsize == 4 else np.uint64)
    return np.ascontiguousarray(x.astype(np.float64)).view(np.uint64)


def row_keys(features: np.ndarray) -> tuple[np.ndarray, bool]:
    """One unsigned key per row, and whether keys are exact (equal keys ⇔ equal rows).

    One 32-bit column stays 32-bit (a faster sort); anything else becomes uint64.
    """
    words = _words(features)
    n, width = words.shape
    bits = words.dtype.itemsize * 8
    if width == 1:
        return words[:, 0].copy(), True
    if width * bits <= 64:
        key = np.zeros(n, dtype=np.uint64)
        for j in range(width):
            key <<= np.uint64(bits)
            key |= words[:, j].astype(np.uint64)
        return key, True
    key = np.zeros(n, dtype=np.uint64)
    for j in range(width):
        key ^= words[:, j].astype(np.uint64)
        key *= _MIX_MULTIPLIER
        key ^= key >> np.uint64(29)
    key *= _FINAL_MULTIPLIER
    key ^= key >> np.uint64(32)
    return key, False


def count_distinct_keys(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """The sorted keys and how many distinct values they hold."""
    ordered = np.sort(keys)
    if ordered.size == 0:
        return ordered, 0
    return ordered, int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1


def compress_rows(
    features: np.ndarray, max_distinct_fraction: float | None = DEFAULT_MAX_DISTINCT_FRACTION
) -> RowCompression | None:
    """Distinct rows, inverse index and counts; None when compression would not pay.

    ``max_distinct_fraction``: give up (return None) when more than this share of the rows
    are distinct; ``None`` always compresses. Distinct rows come in key order, which is
    deterministic, so fits on them are reproducible.
    """
    n = features.shape[0]
    keys, exact = row_keys(features)
    ordered, n_keys = count_distinct_keys(keys)
    if max_distinct_fraction is not None and n_keys > max_distinct_fraction * n:
        return None
    if n == 0:
        return RowCompression(features[:0].copy(), np.zeros(0, np.intp), np.zeros(0, np.int64))
    first = np.empty(ordered.size, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct_keys = ordered[first]
    inverse = _lookup(distinct_keys, keys)
    counts = np.bincount(inverse, minlength=distinct_keys.size).astype(np.int64)
    rows = np.empty((distinct_keys.size, features.shape[1]), dtype=features.dtype)
    rows[inverse] = features  # any pixel of a key represents it
    if not exact and not _same_rows(rows[inverse], features):
        return _compress_by_sorting_rows(features)  # a hash collision: do it the slow way
    return RowCompression(rows, inverse, counts)


def _lookup(distinct_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of every key among the sorted ``distinct_keys``.

    For few distinct keys a collision-free modulus is searched for, so that a table lookup
    (``table[keys % modulus]``, about 3× faster than a binary search) does the mapping;
    otherwise ``np.searchsorted``.
    """
    n_distinct = distinct_keys.size
    if n_distinct <= _MAX_TABLE_KEYS:
        start = max(64, min(_MAX_TABLE_SIZE, 2 * n_distinct * n_distinct))
        for modulus in range(start, start + _MODULUS_TRIES):
            slots = distinct_keys % keys.dtype.type(modulus)
            if np.unique(slots).size == n_distinct:
                table = np.zeros(modulus, dtype=np.intp)
                table[slots] = np.arange(n_distinct)
                return table[keys % keys.dtype.type(modulus)]
    return np.searchsorted(distinct_keys, keys)


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Row-wise equality by value (so -0.0 == 0.0), NaN-free features assumed."""
    return bool(np.array_equal(a, b))


def _compress_by_sorting_rows(features: np.ndarray) -> RowCompression:
    rows, inverse, counts = np.unique(features, axis=0, return_inverse=True, return_counts=True)
    return RowCompression(rows, inverse.reshape(-1), counts.astype(np.int64))
