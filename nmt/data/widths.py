"""Integer types and histograms of example widths, shared by the dataset and the batch sampler.

A width is the padded size of one example (`ParallelDataset.widths`); both the counting sort
of the training pairs and the sampler's batch cut points count examples per width a block at
a time.
"""

from __future__ import annotations

import numpy as np


def index_dtype(count: int) -> type:
    """The integer type of positions into `count` examples."""
    return np.int32 if count < 2**31 else np.int64


def width_dtype(largest: int) -> type:
    """The integer type of widths up to `largest` (2 bytes when it fits)."""
    return np.uint16 if largest < 2**16 else np.int32


def add_counts(counts: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """`counts` (examples per width, int64) with the examples of `widths` added; grows as needed."""
    block = np.bincount(widths)
    counts = np.pad(counts, (0, max(len(block) - len(counts), 0)))
    counts[: len(block)] += block
    return counts
