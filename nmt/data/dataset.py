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

    Only the per-example line numbers and lengths live in memory (a few bytes per pair);
    token ids are read from disk on access.

    Attributes:
        line_numbers: (N,) line number of each example in the text files.
        src_lengths: (N,) source lengths in pieces (no bos/eos).
        tgt_lengths: (N,) target lengths in pieces (no bos/eos).
    """

    def __init__(self, corpus: BinarizedCorpus):
        """Open every line of `corpus` (see `filtered` for a subset)."""
        self.corpus = corpus
        self._ids = [_NpyReader(corpus.ids_path(side)) for side in SIDES]
        self._offsets = [_NpyReader(corpus.offsets_path(side)) for side in SIDES]
        index_dtype = np.int32 if corpus.num_pairs < 2**31 else np.int64
        self.line_numbers = np.arange(corpus.num_pairs, dtype=index_dtype)
        self.src_lengths, self.tgt_lengths = (_lengths(offsets) for offsets in self._offsets)

    def __len__(self) -> int:
        return len(self.line_numbers)

    def __getitem__(self, i: int) -> Example:
        """Return example `i` (a position in this dataset, not a line number)."""
        line = int(self.line_numbers[i])
        src, tgt = (
            ids.read(*offsets.read(line, line + 2).tolist())
            for ids, offsets in zip(self._ids, self._offsets, strict=True)
        )
        return Example(index=line, src=src, tgt=tgt)

    def filtered(
        self, max_len: int | None, max_len_ratio: float | None
    ) -> tuple[ParallelDataset, FilterReport]:
        """Drop pairs with an empty side, a side over `max_len`, or a length ratio over
        `max_len_ratio` (rules of `nmt.data.corpus.filter_reason`, on piece counts).

        Args:
            max_len: longest allowed side in pieces (None = no limit).
            max_len_ratio: largest allowed longer/shorter length ratio (None = no limit).

        Returns:
            The kept examples as a new dataset, and a report of what was removed and why.
        """
        keep = np.zeros(len(self), dtype=bool)
        removed: dict[str, int] = {}
        for begin in range(0, len(self), _BLOCK):
            block = slice(begin, begin + _BLOCK)
            keep[block] = _filter_block(
                self.src_lengths[block], self.tgt_lengths[block], max_len, max_len_ratio, removed
            )
        report = FilterReport(total=len(self), kept=int(keep.sum()), removed=removed)
        return self.select(keep), report

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
        """A dataset of the examples at `positions` (a boolean mask or indices; repeats allowed)."""
        subset = copy.copy(self)
        subset.line_numbers = self.line_numbers[positions]
        subset.src_lengths = self.src_lengths[positions]
        subset.tgt_lengths = self.tgt_lengths[positions]
        return subset


class MixedDataset(ConcatDataset):
    """Several ParallelDatasets one after another (the corpora of a mixture, `nmt.data.mixing`).

    Position i runs through the parts in order; an example's `index` is its line number in
    its own corpus.

    Attributes:
        src_lengths: (N,) source lengths of all parts, concatenated.
        tgt_lengths: (N,) target lengths of all parts, concatenated.
        corpus_ids: (N,) the part of each example.
    """

    def __init__(self, parts: list[ParallelDataset]):
        super().__init__(parts)
        self.src_lengths = np.concatenate([part.src_lengths for part in parts])
        self.tgt_lengths = np.concatenate([part.tgt_lengths for part in parts])
        self.corpus_ids = np.repeat(np.arange(len(parts)), [len(part) for part in parts])


def _lengths(offsets: _NpyReader) -> np.ndarray:
    """Per-line lengths from an offsets file, read block by block (uint16 when they fit)."""
    num = offsets.length - 1
    lengths = np.empty(num, dtype=np.int32)
    for begin in range(0, num, _BLOCK):
        end = min(begin + _BLOCK, num)
        lengths[begin:end] = np.diff(offsets.read(begin, end + 1))
    if num == 0 or lengths.max() < 2**16:
        return lengths.astype(np.uint16)
    return lengths


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
