"""Keyed permutations evaluated per element, and the 64-bit mixer they and cleaning use."""

from __future__ import annotations

import numpy as np
import pytest

from nmt.data.permutation import mix64, permute

MASK = 2**64 - 1


def mix64_by_hand(x: int) -> int:
    """splitmix64's finalizer on Python integers (Steele et al. 2014)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def test_mix64_equals_the_integer_statement():
    values = [0, 1, 2, 12345, 2**32 + 7, 2**63, MASK]
    assert mix64(np.array(values, dtype=np.uint64)).tolist() == list(map(mix64_by_hand, values))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 17, 64, 65, 1000, 4097])
@pytest.mark.parametrize("key", [0, 1, 2**63 + 5])
def test_each_key_gives_a_permutation_of_range_n(n, key):
    images = permute(np.arange(n), n, np.uint64(key))
    assert sorted(images.tolist()) == list(range(n))


def test_keys_choose_different_orders_and_the_same_key_the_same():
    orders = {tuple(permute(np.arange(100), 100, np.uint64(k)).tolist()) for k in range(20)}
    assert len(orders) == 20
    again = permute(np.arange(100), 100, np.uint64(7))
    assert again.tolist() == list(permute(np.arange(100), 100, np.uint64(7)))


def test_one_call_evaluates_several_permutations_elementwise():
    # Elements of two permutations mixed in one call, in any order, each evaluated alone too.
    x = np.array([3, 0, 9, 1, 5, 2])
    n = np.array([4, 10, 10, 4, 10, 4])
    key = np.array([11, 22, 22, 11, 22, 11], dtype=np.uint64)
    together = permute(x, n, key).tolist()
    alone = [
        int(permute(np.array([a]), b, np.uint64(k))[0]) for a, b, k in zip(x, n, key, strict=True)
    ]
    assert together == alone


def test_consecutive_elements_are_spread_like_a_random_order():
    # A batch takes consecutive elements of a run: their images must not stay close.
    n = 10_000
    images = permute(np.arange(n), n, np.uint64(3)).astype(np.float64)
    assert abs(np.corrcoef(np.arange(n), images)[0, 1]) < 0.05
    assert abs(np.abs(np.diff(images)).mean() / n - 1 / 3) < 0.02  # a random order: n/3
