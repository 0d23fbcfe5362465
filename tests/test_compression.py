"""Exact row compression: distinct rows, inverse index and counts, fast at any width."""

from __future__ import annotations

import numpy as np
import pytest

import segclust.compression as compression
from segclust.compression import compress_rows, row_keys


def repeated_rows(n: int, width: int, levels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.integers(0, levels, (n, width)) / levels).astype(np.float32)


def assert_matches_numpy(x: np.ndarray) -> None:
    found = compress_rows(x, max_distinct_fraction=None)
    assert found is not None
    np.testing.assert_array_equal(found.rows[found.inverse], x)
    rows, counts = np.unique(x, axis=0, return_counts=True)
    assert found.n_distinct == rows.shape[0]
    assert found.counts.sum() == x.shape[0]
    # same rows with the same counts, whatever their order
    order = np.lexsort(found.rows.T[::-1])
    np.testing.assert_array_equal(found.rows[order], rows)
    np.testing.assert_array_equal(found.counts[order], counts)


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_round_trip_equals_numpy_unique(width):
    assert_matches_numpy(repeated_rows(20_000, width, levels=6))


def test_float64_and_integer_rows():
    assert_matches_numpy(repeated_rows(5000, 2, 5).astype(np.float64))
    assert_matches_numpy(np.random.default_rng(1).integers(0, 4, (5000, 3)).astype(np.int32))


def test_one_and_two_float32_columns_have_exact_keys_wider_rows_are_hashed():
    assert row_keys(repeated_rows(10, 1, 3))[1] is True
    assert row_keys(repeated_rows(10, 2, 3))[1] is True
    assert row_keys(repeated_rows(10, 3, 3))[1] is False


def test_negative_zero_is_the_same_row_as_zero():
    x = np.array([[0.0], [-0.0], [1.0]], dtype=np.float32)
    found = compress_rows(x, max_distinct_fraction=None)
    assert found.n_distinct == 2 and sorted(found.counts.tolist()) == [1, 2]


def test_gives_up_when_too_many_rows_are_distinct():
    x = np.random.default_rng(2).normal(size=(1000, 3)).astype(np.float32)
    assert compress_rows(x) is None
    assert compress_rows(x, max_distinct_fraction=None).n_distinct == 1000
    few = repeated_rows(1000, 3, levels=2)  # at most 8 distinct rows
    assert compress_rows(few).n_distinct <= 8


def test_hash_collisions_fall_back_to_an_exact_sort(monkeypatch):
    def colliding(features):
        return np.zeros(features.shape[0], dtype=np.uint64), False  # every row collides

    monkeypatch.setattr(compression, "row_keys", colliding)
    assert_matches_numpy(repeated_rows(3000, 3, levels=4))


def test_lookup_table_and_binary_search_give_the_same_inverse():
    rng = np.random.default_rng(3)
    few = np.sort(rng.choice(2**40, size=300, replace=False)).astype(np.uint64)
    many = np.sort(rng.choice(2**40, size=10_000, replace=False)).astype(np.uint64)
    for distinct in (few, many):
        keys = distinct[rng.integers(0, distinct.size, 50_000)]
        np.testing.assert_array_equal(
            compression._lookup(distinct, keys), np.searchsorted(distinct, keys)
        )


def test_empty_input():
    found = compress_rows(np.zeros((0, 2), np.float32), max_distinct_fraction=None)
    assert found.n_distinct == 0 and found.inverse.size == 0
