"""Lexical shortlist: the target pieces worth scoring for a given source, built from training data.

At decode time each sentence may only produce the target pieces its own source pieces make likely
(each source piece's candidates plus the most frequent target pieces), and the output layer
scores the union of those over the batch instead of the whole vocabulary, as in Marian's
shortlists. Candidates are ranked by the Dice
coefficient of sentence co-occurrence, 2 c(s,t) / (n(s) + n(t)) (n: sentences containing the
piece, c: sentence pairs containing both), which does not favour frequent target pieces the way
c(s,t) / n(s) would; the frequent ones are always included anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

# Sentence pairs whose co-occurrences are counted before they are merged into the totals.
_CHUNK_PAIRS = 20_000


@dataclass(frozen=True)
class Shortlist:
    """Candidate target pieces per source piece.

    Attributes:
        candidates: (V_src, per_source) target ids for each source id, best first; -1 pads rows
            of source pieces with fewer candidates (or never seen).
        frequent: (F,) the most frequent target ids, always scored.
        tgt_vocab_size: V_tgt.
    """

    candidates: torch.Tensor
    frequent: torch.Tensor
    tgt_vocab_size: int

    def to_dict(self) -> dict[str, torch.Tensor | int]:
        """Tensors and ints only, so that a checkpoint holding it loads with weights_only."""
        return {
            "candidates": self.candidates,
            "frequent": self.frequent,
            "tgt_vocab_size": self.tgt_vocab_size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, torch.Tensor | int]) -> Shortlist:
        return cls(data["candidates"], data["frequent"], int(data["tgt_vocab_size"]))

    def allowed(
        self, src: torch.Tensor, src_lengths: torch.Tensor, always: Sequence[int]
    ) -> torch.Tensor:
        """Each sentence's own shortlist as a (B, V_tgt) bool mask.

        A sentence may produce `always` (e.g. bos, eos, unk), the frequent pieces and the
        candidates of its own source pieces; what other sentences of the batch allow does not
        change it, so a line translates the same in any batch.

        Args:
            src: (B, S) padded source ids.
            src_lengths: (B,) real lengths.
            always: ids allowed for every sentence.
        """
        batch, src_len = src.shape
        mask = torch.zeros(batch, self.tgt_vocab_size, dtype=torch.bool)
        shared = torch.cat([torch.tensor(list(always), dtype=torch.long), self.frequent.long()])
        mask[:, shared] = True
        real = torch.arange(src_len) < src_lengths.cpu().unsqueeze(1)  # (B, S)
        cands = self.candidates.long()[src.cpu()]  # (B, S, per_source)
        keep = real.unsqueeze(2) & (cands >= 0)
        rows = torch.arange(batch).view(batch, 1, 1).expand_as(cands)
        mask[rows[keep], cands[keep]] = True
        return mask


def build_shortlist(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    src_vocab_size: int,
    tgt_vocab_size: int,
    per_source: int,
    frequent: int,
) -> Shortlist:
    """Count sentence co-occurrences and keep each source piece's best target pieces.

    Args:
        pairs: (source ids, target ids) of each training pair.
        src_vocab_size: V_src, the number of rows.
        tgt_vocab_size: V_tgt, for the frequency count.
        per_source: candidates kept per source piece (`data.shortlist.per_source`).
        frequent: most frequent target pieces always kept (`data.shortlist.frequent`).

    Returns:
        The shortlist.
    """
    if per_source < 1 or frequent < 0:
        raise ValueError(
            f"data.shortlist.per_source must be >= 1 and frequent >= 0, got {per_source}/{frequent}"
        )
    src_count = np.zeros(src_vocab_size, dtype=np.int64)
    tgt_count = np.zeros(tgt_vocab_size, dtype=np.int64)
    keys = np.zeros(0, dtype=np.int64)  # s * V_tgt + t, sorted and unique
    counts = np.zeros(0, dtype=np.int64)
    chunk: list[np.ndarray] = []
    for number, (src, tgt) in enumerate(pairs, start=1):
        src_ids, tgt_ids = np.unique(src).astype(np.int64), np.unique(tgt).astype(np.int64)
        src_count[src_ids] += 1
        tgt_count[tgt_ids] += 1
        chunk.append((src_ids[:, None] * tgt_vocab_size + tgt_ids[None, :]).reshape(-1))
        if number % _CHUNK_PAIRS == 0:
            keys, counts = _merge(keys, counts, chunk)
            chunk = []
    keys, counts = _merge(keys, counts, chunk)
    src_of, tgt_of = keys // tgt_vocab_size, keys % tgt_vocab_size
    dice = 2.0 * counts / (src_count[src_of] + tgt_count[tgt_of])
    order = np.lexsort((-dice, src_of))  # by source, best first
    src_sorted = src_of[order]
    starts = np.searchsorted(src_sorted, src_sorted, side="left")
    rank = np.arange(len(order)) - starts
    kept = rank < per_source
    candidates = np.full((src_vocab_size, per_source), -1, dtype=np.int32)
    candidates[src_sorted[kept], rank[kept]] = tgt_of[order][kept]
    top = np.argsort(-tgt_count, kind="stable")[:frequent]
    top = top[tgt_count[top] > 0]
    return Shortlist(
        torch.from_numpy(candidates), torch.from_numpy(top.astype(np.int32)), tgt_vocab_size
    )


def _merge(
    keys: np.ndarray, counts: np.ndarray, chunk: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Add a chunk's co-occurrence keys to the sorted (keys, counts) totals."""
    if not chunk:
        return keys, counts
    merged, inverse = np.unique(np.concatenate([keys, *chunk]), return_inverse=True)
    weights = np.concatenate([counts, np.ones(sum(len(c) for c in chunk), dtype=np.int64)])
    return merged, np.bincount(inverse, weights=weights, minlength=len(merged)).astype(np.int64)
