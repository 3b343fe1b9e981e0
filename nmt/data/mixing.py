"""Several training corpora in one run: per-epoch shares by weight, drawn again every epoch.

One mechanism serves weighted corpora (`data.corpora`) and multilingual directions
(`data.directions`), whose weights come from a temperature over their sizes:

- `epoch_counts`: corpus i gets round(N * w_i / Σ w) examples per epoch, N = Σ n_i being the
  pairs of all corpora after filtering (largest-remainder rounding, so the counts sum to N).
  A weight is a share of the epoch, independent of the corpus's size: weights 3 and 1 give
  three quarters of every epoch to the first corpus whatever the sizes.
- `temperature_weights`: w_i = n_i^(1/T) (Arivazhagan et al. 2019), i.e. p_i ∝ n_i^(1/T):
  T = 1 keeps the natural proportions, larger T flattens them towards uniform.
- `EpochDraw`: which examples make up an epoch. A corpus drawn c_i times for n_i pairs gives
  floor(c_i / n_i) whole copies plus r_i = c_i mod n_i distinct further pairs, and those
  change from epoch to epoch: the draw is stratified by padded width, each (corpus, width)
  class of m pairs giving a fixed t of them per epoch (r_i split over the classes by their
  sizes), taken as a window that moves by t each epoch through the class in an order
  shuffled by the seed. So every pair of a down-weighted corpus is used once per ceil(m/t)
  epochs, and every epoch has the same length profile, hence the same batch cut points and
  batch count (Lightning fixes an epoch's length once; DDP ranks must agree).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from nmt.data.reader import TextSide, as_side, read_pairs
from nmt.utils.io import atomic_open


def largest_remainder(quotas: np.ndarray, total: int) -> np.ndarray:
    """Round non-negative `quotas` summing to `total` into integers with the same sum.

    Each quota is floored; the units left go to the largest fractional parts (ties: first).
    """
    floors = np.floor(quotas).astype(np.int64)
    left = total - int(floors.sum())
    if left > 0:
        order = np.argsort(-(quotas - floors), kind="stable")
        floors[order[:left]] += 1
    return floors


def epoch_counts(sizes: Sequence[int], weights: Sequence[float]) -> list[int]:
    """Examples of each corpus per epoch: round(N * w_i / Σ w), summing to N = Σ sizes.

    Args:
        sizes: (n_1, ..., n_K) pairs of each corpus after filtering.
        weights: (w_1, ..., w_K) non-negative shares, not all zero.

    Returns:
        The count of each corpus; a corpus with a positive count and no pairs is an error of
        the caller (see `empty_but_drawn`).
    """
    n = np.asarray(sizes, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    total = int(n.sum())
    if len(n) != len(w) or w.sum() <= 0 or (w < 0).any():
        raise ValueError(f"weights {list(weights)} do not fit sizes {list(sizes)}")
    return largest_remainder(total * w / w.sum(), total).tolist()


def empty_but_drawn(sizes: Sequence[int], counts: Sequence[int]) -> int | None:
    """The first corpus that must give examples but has none, or None."""
    for i, (size, count) in enumerate(zip(sizes, counts, strict=True)):
        if size == 0 and count > 0:
            return i
    return None


def temperature_weights(sizes: Sequence[int], temperature: float) -> list[float]:
    """Weights n_i^(1/T) of temperature sampling (0 for an empty corpus)."""
    if not temperature > 0:
        raise ValueError(f"data.temperature must be positive, got {temperature}")
    n = np.asarray(sizes, dtype=np.float64)
    scale = max(float(n.max(initial=0.0)), 1.0)  # (n/scale)^(1/T): no overflow at small T
    return np.where(n > 0, (n / scale) ** (1.0 / temperature), 0.0).tolist()


class EpochDraw:
    """The examples of each epoch: whole copies of each corpus plus a stratified random rest.

    Args:
        corpus_ids: (N,) corpus of each example.
        widths: (N,) padded width of each example (the batch sampler's sort key).
        counts: examples of each corpus per epoch (`epoch_counts`).
    """

    def __init__(self, corpus_ids: np.ndarray, widths: np.ndarray, counts: Sequence[int]):
        corpus_ids = np.asarray(corpus_ids, dtype=np.int64)
        widths = np.asarray(widths, dtype=np.int64)
        sizes = np.bincount(corpus_ids, minlength=len(counts))
        wanted = np.asarray(counts, dtype=np.int64)
        if len(sizes) != len(wanted) or (wanted[sizes == 0] > 0).any():
            raise ValueError(f"counts {list(counts)} do not fit corpus sizes {sizes.tolist()}")
        safe = np.maximum(sizes, 1)
        copies, rest = wanted // safe, wanted % safe
        # Classes: (corpus, width); class k holds members[k] examples of corpus corpus_of[k].
        keys = corpus_ids * (int(widths.max(initial=0)) + 1) + widths
        classes, self._class_of, members = np.unique(keys, return_inverse=True, return_counts=True)
        corpus_of = classes // (int(widths.max(initial=0)) + 1)
        self._take = np.zeros(len(classes), dtype=np.int64)
        for corpus in np.flatnonzero(rest):
            mine = np.flatnonzero(corpus_of == corpus)
            quotas = rest[corpus] * members[mine] / sizes[corpus]
            self._take[mine] = largest_remainder(quotas, int(rest[corpus]))
        self._members = members
        self._class_start = np.concatenate([[0], np.cumsum(members)[:-1]])
        self._copies = copies[corpus_ids]  # (N,) whole copies of each example
        self.sorted_widths = np.sort(widths[self.positions(seed=0, epoch=0)])

    def positions(self, seed: int, epoch: int) -> np.ndarray:
        """Positions of one epoch's examples (repeats allowed), grouped: copies, then the rest.

        Args:
            seed: orders each class (the same order for every epoch).
            epoch: where the window of each class starts in that order.

        Returns:
            (Σ counts,) positions into the examples; their widths, sorted, are the same for
            every seed and epoch.
        """
        num = len(self._class_of)
        whole = np.repeat(np.arange(num), self._copies)
        keys = np.random.default_rng([seed, 1]).random(num)
        order = np.lexsort((keys, self._class_of))  # by class, shuffled within
        classes = self._class_of[order]
        rank = np.arange(num) - self._class_start[classes]  # place in the class's order
        take = self._take[classes]
        window = (rank - epoch * take) % self._members[classes] < take
        return np.concatenate([whole, np.sort(order[window])])


@dataclass(frozen=True)
class CorpusShare:
    """One corpus of a run: its pairs after filtering and the examples it gives per epoch."""

    name: str
    pairs: int
    per_epoch: int
    share: float  # of the epoch


def corpus_shares(
    names: Sequence[str], sizes: Sequence[int], counts: Sequence[int]
) -> list[CorpusShare]:
    """The per-corpus figures printed at the start of training and logged."""
    total = max(sum(counts), 1)
    return [
        CorpusShare(name, int(size), int(count), count / total)
        for name, size, count in zip(names, sizes, counts, strict=True)
    ]


def share_metrics(shares: Sequence[CorpusShare]) -> dict[str, float]:
    """Logger metrics: data/pairs/NAME, data/per_epoch/NAME, data/share/NAME."""
    metrics: dict[str, float] = {}
    for share in shares:
        metrics[f"data/pairs/{share.name}"] = float(share.pairs)
        metrics[f"data/per_epoch/{share.name}"] = float(share.per_epoch)
        metrics[f"data/share/{share.name}"] = share.share
    return metrics


def write_combined(
    parts: Sequence[tuple[Path | TextSide, Path | TextSide, str | None]],
    out: tuple[Path, Path],
    max_lines: int | None = None,
    on_invalid_utf8: str = "error",
    chunk_lines: int = 10_000,
) -> list[int]:
    """Concatenate several parallel corpora, in order, into the `out` pair of files.

    Args:
        parts: (source, target, source prefix or None) of each part: files or TSV columns
            (`nmt.data.reader.TextSide`); the prefix (e.g. a multilingual tag) is put before
            every source line, with a space.
        out: the combined (source, target) files.
        max_lines: keep at most this many pairs of each part (the first ones).
        on_invalid_utf8: "error" or "replace", as `nmt.data.corpus.read_lines`.
        chunk_lines: pairs read and written at a time (memory holds one chunk).

    Returns:
        Pairs contributed by each part (the line ranges of the combined files).

    Every part is read to its end (line counts and TSV columns are checked throughout).
    Files are rewritten (atomically) only when their content changes, so a second process
    building the same files, or a rerun, leaves them and the binarization cache untouched.
    """
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(atomic_open(p, only_if_changed=True)) for p in out]
        return [
            _append_part(
                handles,
                read_pairs(as_side(src), as_side(tgt), chunk_lines, on_invalid_utf8),
                prefix,
                max_lines,
            )
            for src, tgt, prefix in parts
        ]


def _append_part(
    handles: list[IO[str]],
    pairs: Iterator[tuple[list[str], list[str]]],
    prefix: str | None,
    max_lines: int | None,
) -> int:
    """Write the first `max_lines` (all, with None) of the chunked `pairs`; return the count."""
    kept = 0
    for src_lines, tgt_lines in pairs:
        take = len(src_lines) if max_lines is None else min(len(src_lines), max_lines - kept)
        src = src_lines[:take] if prefix is None else [f"{prefix} {x}" for x in src_lines[:take]]
        for handle, lines in zip(handles, (src, tgt_lines[:take]), strict=True):
            handle.write("".join(line + "\n" for line in lines))
        kept += take
    return kept
