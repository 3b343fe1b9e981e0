"""Batch: padded tensors for one training/inference step, and collate() to build it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nmt.data.dataset import Example
from nmt.tokenizer import SpecialIds


@dataclass
class Batch:
    """A padded batch, in the order the examples were given.

    Attributes:
        src: (B, S) long source ids, right-padded with pad.
        src_lengths: (B,) long source lengths.
        tgt_in: (B, T) long decoder input, [bos] + y, right-padded.
        tgt_out: (B, T) long decoder target, y + [eos], right-padded.
        ntokens: number of real (non-pad) target tokens, eos included.
        indices: (B,) long line number of each example in the text files.
    """

    src: torch.Tensor
    src_lengths: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    ntokens: int
    indices: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Return the batch with every tensor on `device` (Lightning calls this to move it)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Return the batch in pinned memory (DataLoader calls this when `pin_memory=True`)."""
        return self._map(torch.Tensor.pin_memory)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """Apply `fn` to every tensor field."""
        return Batch(
            src=fn(self.src),
            src_lengths=fn(self.src_lengths),
            tgt_in=fn(self.tgt_in),
            tgt_out=fn(self.tgt_out),
            ntokens=self.ntokens,
            indices=fn(self.indices),
        )

    def __len__(self) -> int:
        return self.src.shape[0]


def collate(examples: Sequence[Example], special_ids: SpecialIds) -> Batch:
    """Pad examples into a Batch, keeping their order.

    Args:
        examples: B examples with unpadded src (S_i,) and tgt (T_i,) id arrays.
        special_ids: pad/bos/eos ids.

    Returns:
        The batch; S = max S_i (at least 1), T = max T_i + 1.
    """
    if not examples:
        raise ValueError("collate() needs at least one example")
    src_lengths = np.array([len(ex.src) for ex in examples], dtype=np.int64)
    tgt_lengths = np.array([len(ex.tgt) for ex in examples], dtype=np.int64)
    batch_size = len(examples)
    src = np.full((batch_size, max(int(src_lengths.max()), 1)), special_ids.pad, np.int64)
    tgt_in = np.full((batch_size, int(tgt_lengths.max()) + 1), special_ids.pad, np.int64)
    tgt_out = tgt_in.copy()
    for row, ex in enumerate(examples):
        n_src, n_tgt = len(ex.src), len(ex.tgt)
        src[row, :n_src] = ex.src
        tgt_in[row, 0] = special_ids.bos
        tgt_in[row, 1 : n_tgt + 1] = ex.tgt
        tgt_out[row, :n_tgt] = ex.tgt
        tgt_out[row, n_tgt] = special_ids.eos
    return Batch(
        src=torch.from_numpy(src),
        src_lengths=torch.from_numpy(src_lengths),
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        ntokens=int(tgt_lengths.sum()) + batch_size,
        indices=torch.tensor([ex.index for ex in examples], dtype=torch.int64),
    )
