"""Remove redundant training pairs, counted: copies (target = source) and exact duplicates.

Both rules look at the binarized token ids (`nmt.data.binarize`), read block by block, so
memory is a few bytes per pair, never the text:

- A **copy** is a pair whose target equals its source: the same id sequence when one joint
  SentencePiece model encodes both sides (compared id by id, exact), the same decoded text
  with two models (their ids are not comparable; decoding costs more). Text that differs only
  where SentencePiece normalizes it (e.g. NFKC, runs of spaces) has the same ids.
- A **duplicate** is a pair whose source and target ids both equal those of an earlier pair
  of the dataset; the first occurrence stays. Pairs are compared by a 128-bit hash of their
  ids (two 64-bit hashes), 16 bytes per pair: a false match has probability about n²/2¹²⁹
  (below 10⁻²² for 10⁸ pairs).

Both keep the order of what remains, and both depend only on the arrays (content-hashed),
so a resumed run draws from the same examples.
"""

from __future__ import annotations

import numpy as np

from nmt.data.corpus import FilterReport
from nmt.data.data_config import CleanConfig
from nmt.data.dataset import ParallelDataset
from nmt.data.permutation import mix64
from nmt.tokenizer import SpmTokenizer

COPY = "copy (target = source)"
DUPLICATE = "duplicate pair"
# Corpus lines per block read from the arrays: bounds the temporary (8-byte) token arrays.
_BLOCK_LINES = 1 << 16
_SEEDS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03))

Block = list[tuple[np.ndarray, np.ndarray]]  # [(ids, offsets) of the source, of the target]


def clean_pairs(
    dataset: ParallelDataset,
    report: FilterReport,
    settings: CleanConfig,
    tokenizers: tuple[SpmTokenizer, SpmTokenizer],
) -> tuple[ParallelDataset, FilterReport]:
    """Remove copies, then duplicates, from `dataset`; add their counts to `report`.

    Args:
        dataset: the training pairs kept so far (e.g. by `ParallelDataset.kept_by_width`).
        report: what removed the others; `total` stays, `kept` and `removed` are updated.
        settings: which rules apply (`data.clean`).
        tokenizers: (source, target) tokenizers; the same object when the model is joint.

    Returns:
        The remaining pairs, in their order, and the updated report.
    """
    if not (settings.copies or settings.duplicates):
        return dataset, report
    removed = dict(report.removed)
    if settings.copies:
        copy = _copy_lines(dataset, tokenizers)[dataset.line_numbers]
        removed[COPY] = int(copy.sum())
        dataset = dataset.select(~copy)
    if settings.duplicates:
        keys = _pair_keys(dataset)
        repeat = later_occurrences(*(key[dataset.line_numbers] for key in keys))
        removed[DUPLICATE] = int(repeat.sum())
        dataset = dataset.select(~repeat)
    return dataset, FilterReport(total=report.total, kept=len(dataset), removed=removed)


def later_occurrences(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(N,) True where the key (first[i], second[i]) occurred at an earlier position."""
    order = np.lexsort((second, first))  # stable: equal keys stay in position order
    same = (first[order][1:] == first[order][:-1]) & (second[order][1:] == second[order][:-1])
    repeat = np.zeros(len(order), dtype=bool)
    repeat[order[1:][same]] = True
    return repeat


def _pair_keys(dataset: ParallelDataset) -> tuple[np.ndarray, np.ndarray]:
    """Two (num_pairs,) uint64 hashes of every corpus line's (source ids, target ids)."""
    keys = [np.empty(dataset.corpus.num_pairs, dtype=np.uint64) for _ in _SEEDS]
    for begin, block in dataset.line_blocks(_BLOCK_LINES):
        for key, seed in zip(keys, _SEEDS, strict=True):
            src, tgt = (_side_hash(ids, offsets, seed) for ids, offsets in block)
            key[begin : begin + len(src)] = mix64(src ^ mix64(tgt ^ seed))
    return keys[0], keys[1]


def _side_hash(ids: np.ndarray, offsets: np.ndarray, seed: np.uint64) -> np.ndarray:
    """(n,) 64-bit hash of each line's ids: Σ mix(id, position) mod 2⁶⁴, mixed with the length.

    Each (id, position) maps to its own pseudo-random 64-bit value (a bijection), so two
    different sequences of one length collide only when their sums do, about 2⁻⁶⁴.
    """
    lengths = np.diff(offsets)
    positions = np.arange(len(ids), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    tokens = mix64((ids.astype(np.uint64) | (positions.astype(np.uint64) << np.uint64(32))) ^ seed)
    sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(tokens, dtype=np.uint64)])
    per_line = sums[offsets[1:]] - sums[offsets[:-1]]  # wraps mod 2⁶⁴, as the sums do
    return mix64(per_line ^ mix64(lengths.astype(np.uint64) + seed))


def _copy_lines(
    dataset: ParallelDataset, tokenizers: tuple[SpmTokenizer, SpmTokenizer]
) -> np.ndarray:
    """(num_pairs,) True for every corpus line whose target equals its source."""
    copy = np.empty(dataset.corpus.num_pairs, dtype=bool)
    src_tokenizer, tgt_tokenizer = tokenizers
    joint = src_tokenizer is tgt_tokenizer  # one model: its ids compare exactly
    for begin, block in dataset.line_blocks(_BLOCK_LINES):
        if joint:
            same = _same_ids(block)
        else:
            (src_ids, src_offsets), (tgt_ids, tgt_offsets) = block
            src = src_tokenizer.decode(np.split(src_ids, src_offsets[1:-1]))
            tgt = tgt_tokenizer.decode(np.split(tgt_ids, tgt_offsets[1:-1]))
            same = np.fromiter(map(str.__eq__, src, tgt), dtype=bool, count=len(src))
        copy[begin : begin + len(same)] = same
    return copy


def _same_ids(block: Block) -> np.ndarray:
    """(n,) True where a line's source and target id sequences are equal."""
    (src_ids, src_offsets), (tgt_ids, tgt_offsets) = block
    src_lengths, tgt_lengths = np.diff(src_offsets), np.diff(tgt_offsets)
    same = src_lengths == tgt_lengths
    # Lines of equal length: their tokens line up one to one once the others are left out.
    line_of = np.repeat(np.arange(len(same)), src_lengths)  # (src tokens,)
    src_kept = src_ids[same[line_of]]
    tgt_kept = tgt_ids[np.repeat(same, tgt_lengths)]
    same[line_of[same[line_of]][src_kept != tgt_kept]] = False
    return same
