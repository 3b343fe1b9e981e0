"""ParallelDataset: random access to a binarized corpus, with memory independent of its size."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from torch.utils.data import ConcatDataset

from nmt.data.binarize import SIDES, BinarizedCorpus
from nmt.data.corpus import FilterReport, filter_reason
from nmt.data.widths import add_counts, index_dtype, width_dtype

# Examples per block when scanning whole-corpus arrays, to bound temporary memory.
_BLOCK = 1 << 18


class Example(NamedTuple):
    """One sentence pair: `index` is its 0-based line number in the text files."""

    index: int
    src: np.ndarray
    tgt: np.ndarray


class _NpyReader:
    """Positional reads from a 1-D .npy file, without mapping it into memory.

    Mapped pages count as resident memory of the process once touched, so an epoch over a
    memory-mapped corpus grows RSS by the corpus size; `os.pread` goes through the page
    cache instead and leaves RSS flat.
    """

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 (lives as long as the reader)
        if np.lib.format.read_magic(self._file) == (1, 0):
            shape, _, self.dtype = np.lib.format.read_array_header_1_0(self._file)
        else:
            shape, _, self.dtype = np.lib.format.read_array_header_2_0(self._file)
        self.length = shape[0]
        self._start = self._file.tell()

    def read(self, begin: int, end: int) -> np.ndarray:
        """Return elements [begin, end) as a new array."""
        size = self.dtype.itemsize
        data = os.pread(self._file.fileno(), (end - begin) * size, self._start + begin * size)
        return np.frombuffer(data, dtype=self.dtype)

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])


class ParallelDataset:
    """Sentence pairs of a binarized corpus, optionally restricted to a subset of lines.

    Only the per-example line numbers and padded widths live in memory (6 bytes per pair);
    token ids are read from disk on access. The training pairs of a corpus
    (`kept_by_width`) come ordered by width, so the batch sampler needs no order of its own.

    Attributes:
        line_numbers: (N,) line number of each example in the text files.
        widths: (N,) padded width of each example, max(source length, target length + 1) in
            pieces: the batch sampler's sort key (uint16 when it fits).
    """

    def __init__(
        self, corpus: BinarizedCorpus, selection: tuple[np.ndarray, np.ndarray] | None = None
    ):
        """Every line of `corpus` in file order, or `selection`: (line numbers, their widths)."""
        self.corpus = corpus
        self._ids = [_NpyReader(corpus.ids_path(side)) for side in SIDES]
        self._offsets = [_NpyReader(corpus.offsets_path(side)) for side in SIDES]
        if selection is not None:
            self.line_numbers, self.widths = selection
            return
        self.line_numbers = np.arange(corpus.num_pairs, dtype=index_dtype(corpus.num_pairs))
        self.widths = np.empty(corpus.num_pairs, dtype=np.uint16)
        for begin, src, tgt in self._length_blocks():
            widths = np.maximum(src, tgt + 1)
            if width_dtype(int(widths.max(initial=0))) is np.int32:
                self.widths = self.widths.astype(np.int32, copy=False)
            self.widths[begin : begin + len(widths)] = widths

    @classmethod
    def kept_by_width(
        cls, corpus: BinarizedCorpus, max_len: int | None, max_len_ratio: float | None
    ) -> tuple[ParallelDataset, FilterReport]:
        """The pairs of `corpus` within the length limits, ordered by width (ties: line order).

        Pairs with an empty side, a side over `max_len`, or a length ratio over
        `max_len_ratio` are dropped (rules of `nmt.data.corpus.filter_reason`, on piece
        counts). Two passes over the offsets, a block at a time (a counting sort by width):
        the first evaluates the filter and keeps its verdict as one bit per pair, the second
        places the kept pairs; besides that bit, only the result is held, 6 bytes per kept
        pair.

        Returns:
            The kept examples, and a report of what was removed and why.
        """
        empty = (np.zeros(0, np.int32), np.zeros(0, np.uint16))  # filled in below
        dataset = cls(corpus, empty)
        removed: dict[str, int] = {}
        counts = np.zeros(0, dtype=np.int64)  # kept pairs per width
        # The filter's verdict, one bit per pair (a block is 2^18 pairs: it fills whole bytes).
        kept_bits = np.zeros((corpus.num_pairs + 7) // 8, dtype=np.uint8)
        for begin, src, tgt in dataset._length_blocks():
            keep = _filter_block(src, tgt, max_len, max_len_ratio, removed)
            kept_bits[begin // 8 : begin // 8 + (len(keep) + 7) // 8] = np.packbits(keep)
            counts = add_counts(counts, np.maximum(src[keep], tgt[keep] + 1))
        kept = int(counts.sum())
        lines = np.empty(kept, dtype=index_dtype(corpus.num_pairs))
        cursor = np.cumsum(counts) - counts  # next place of each width in the sorted order
        for begin, src, tgt in dataset._length_blocks():
            bits = kept_bits[begin // 8 : begin // 8 + (len(src) + 7) // 8]
            positions = np.flatnonzero(np.unpackbits(bits, count=len(src)))
            widths = np.maximum(src[positions], tgt[positions] + 1)
            order = np.argsort(widths, kind="stable")
            by_width = widths[order]
            rank = np.arange(len(order)) - np.searchsorted(by_width, by_width, side="left")
            lines[cursor[by_width] + rank] = positions[order] + begin
            cursor = add_counts(cursor, widths)
        present = np.flatnonzero(counts)
        dtype = width_dtype(int(present.max(initial=0)))
        dataset.line_numbers = lines
        dataset.widths = np.repeat(present.astype(dtype), counts[present])
        return dataset, FilterReport(total=corpus.num_pairs, kept=kept, removed=removed)

    def __len__(self) -> int:
        return len(self.line_numbers)

    def __getitem__(self, i: int) -> Example:
        """Return example `i` (a position in this dataset, not a line number)."""
        return self.example(int(self.line_numbers[i]))

    def example(self, line: int) -> Example:
        """Return the pair on line `line` of the corpus."""
        src, tgt = (
            ids.read(*offsets.read(line, line + 2).tolist())
            for ids, offsets in zip(self._ids, self._offsets, strict=True)
        )
        return Example(index=line, src=src, tgt=tgt)

    def first_lines(self, count: int) -> np.ndarray:
        """The `count` smallest line numbers of this dataset, ascending (each line once).

        Found through a one-byte-per-line mask, a block at a time, not by sorting.
        """
        member = np.zeros(self.corpus.num_pairs, dtype=bool)
        member[self.line_numbers] = True
        found: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
        left = count
        for begin in range(0, len(member), _BLOCK):
            if left <= 0:
                break
            lines = np.flatnonzero(member[begin : begin + _BLOCK])[:left] + begin
            found.append(lines)
            left -= len(lines)
        return np.concatenate(found)

    def line_blocks(self, lines: int) -> Iterator[tuple[int, list[tuple[np.ndarray, np.ndarray]]]]:
        """Yield (first line, [(ids, offsets) of the source, of the target]) per `lines` lines.

        Every line of the corpus, whatever this dataset selects, in order; offsets start at 0
        (line j of the block is ids[offsets[j]:offsets[j+1]]), so one block is in memory.
        """
        for begin in range(0, self.corpus.num_pairs, lines):
            end = min(begin + lines, self.corpus.num_pairs)
            sides = []
            for ids, offsets in zip(self._ids, self._offsets, strict=True):
                bounds = offsets.read(begin, end + 1)
                sides.append((ids.read(int(bounds[0]), int(bounds[-1])), bounds - bounds[0]))
            yield begin, sides

    def select(self, positions: np.ndarray) -> ParallelDataset:
        """A dataset of the examples at `positions` (a boolean mask or indices; repeats allowed).

        A mask keeps the order, so a subset of a dataset ordered by width is still ordered.
        """
        subset = copy.copy(self)
        subset.line_numbers = self.line_numbers[positions]
        subset.widths = self.widths[positions]
        return subset

    def _length_blocks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield (first line, source lengths, target lengths) of every corpus line, by block."""
        src_offsets, tgt_offsets = self._offsets
        for begin in range(0, self.corpus.num_pairs, _BLOCK):
            end = min(begin + _BLOCK, self.corpus.num_pairs)
            yield begin, *(np.diff(o.read(begin, end + 1)) for o in (src_offsets, tgt_offsets))


class MixedDataset(ConcatDataset):
    """Several ParallelDatasets one after another (the corpora of a mixture, `nmt.data.mixing`).

    Position i runs through the parts in order; an example's `index` is its line number in
    its own corpus.

    Attributes:
        widths: (N,) padded widths of all parts, concatenated.
        corpus_ids: (N,) the part of each example.
    """

    def __init__(self, parts: list[ParallelDataset]):
        super().__init__(parts)
        self.widths = np.concatenate([part.widths for part in parts])
        self.corpus_ids = np.repeat(
            np.arange(len(parts), dtype=np.min_scalar_type(len(parts))), [len(p) for p in parts]
        )


def _filter_block(
    src: np.ndarray,
    tgt: np.ndarray,
    max_len: int | None,
    max_len_ratio: float | None,
    removed: dict[str, int],
) -> np.ndarray:
    """Keep-mask for one block; removal counts are added to `removed` by reason."""
    # The rule is evaluated once per distinct (src, tgt) length pair, not per example.
    keys = src.astype(np.int64) << 32 | tgt.astype(np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    reasons = [
        filter_reason(int(key >> 32), int(key & 0xFFFFFFFF), max_len, max_len_ratio)
        for key in unique
    ]
    counts = np.bincount(inverse.reshape(-1), minlength=len(unique))
    for reason, count in zip(reasons, counts.tolist(), strict=True):
        if reason is not None:
            removed[reason] = removed.get(reason, 0) + count
    kept = np.array([reason is None for reason in reasons], dtype=bool)
    return kept[inverse.reshape(-1)]
