"""Keyed pseudo-random bijections computed per element: hashing and shuffling without tables.

- `mix64`: splitmix64's finalizer (Steele et al. 2014), a bijection of 64-bit words whose
  output bits all depend on every input bit.
- `permute`: a pseudo-random permutation of [0, n) chosen by a key, evaluated for the given
  elements only: a keyed bijection of [0, 2^b) for the smallest 2^b >= n (an add, two odd
  multiplications and two xor-shifts, all mod 2^b), applied again while the value is not below
  n ("cycle walking", Black & Rogaway 2002). Each element can have its own n and key, so one
  call serves several independent permutations.

A shuffle of N items then costs nothing until items are asked for, and no O(N) order array:
the batch sampler uses it to shuffle equal-width examples inside a corpus sorted by width.
"""

from __future__ import annotations

import numpy as np

_MULTIPLIERS = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ONE = np.uint64(1)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64, wrapping."""
    x = (x ^ (x >> np.uint64(30))) * _MULTIPLIERS[0]
    x = (x ^ (x >> np.uint64(27))) * _MULTIPLIERS[1]
    return x ^ (x >> np.uint64(31))


def permute(x: np.ndarray, n: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The image of each x[i] under the permutation of [0, n[i]) that key[i] selects.

    Args:
        x: (M,) integers with 0 <= x < n.
        n: (M,) domain sizes (>= 1), broadcastable to x.
        key: (M,) uint64 keys, broadcastable to x; equal (n, key) means the same permutation.

    Returns:
        (M,) int64 images: for fixed (n, key), distinct x give distinct values in [0, n).
    """
    x = np.asarray(x, dtype=np.uint64)
    n = np.broadcast_to(np.asarray(n, dtype=np.uint64), x.shape)
    key = np.broadcast_to(np.asarray(key, dtype=np.uint64), x.shape)
    bits = np.ceil(np.log2(np.maximum(n, 1).astype(np.float64))).astype(np.uint64)
    mask = (_ONE << bits) - _ONE  # 2^b >= n > 2^(b-1): a step lands below n with p > 1/2
    shift = (bits + _ONE) // np.uint64(2)
    factors = (mix64(key) | _ONE, (key * _GOLDEN) | _ONE)
    y = _bijection(x, key, factors, mask, shift)
    outside = np.flatnonzero(y >= n)
    while len(outside):
        keys = (key[outside], *(f[outside] for f in factors))
        y[outside] = _bijection(y[outside], keys[0], keys[1:], mask[outside], shift[outside])
        outside = outside[y[outside] >= n[outside]]
    return y.astype(np.int64)


def _bijection(
    x: np.ndarray,
    key: np.ndarray,
    factors: tuple[np.ndarray, np.ndarray],
    mask: np.ndarray,
    shift: np.ndarray,
) -> np.ndarray:
    """A keyed bijection of [0, mask + 1) per element (each step is invertible mod 2^b)."""
    x = (x + key) & mask
    for factor in factors:
        x = (x * factor) & mask
        x ^= x >> shift
    return x
