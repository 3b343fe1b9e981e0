"""collate(): shapes, bos/eos shift, padding, token count, order, device moves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.data.batch import Batch, collate
from nmt.data.dataset import Example
from nmt.tokenizer import SpecialIds

IDS = SpecialIds()


def example(index, src, tgt):
    return Example(index, np.array(src, dtype=np.uint16), np.array(tgt, dtype=np.uint16))


@pytest.fixture
def examples():
    return [
        example(7, [10, 11, 12], [20, 21]),
        example(2, [13], [22, 23, 24, 25]),
        example(5, [14, 15], []),
    ]


def test_shapes_shift_and_padding(examples):
    batch = collate(examples, IDS)
    assert batch.src.shape == (3, 3) and batch.tgt_in.shape == (3, 5) == batch.tgt_out.shape
    for tensor in (batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out, batch.indices):
        assert tensor.dtype == torch.int64
    for row, ex in enumerate(examples):
        src, tgt = ex.src.tolist(), ex.tgt.tolist()
        n = len(tgt)
        assert batch.src[row].tolist() == src + [IDS.pad] * (3 - len(src))
        assert batch.tgt_in[row].tolist() == [IDS.bos] + tgt + [IDS.pad] * (4 - n)
        assert batch.tgt_out[row].tolist() == tgt + [IDS.eos] + [IDS.pad] * (4 - n)
    assert batch.src_lengths.tolist() == [3, 1, 2]
    assert batch.indices.tolist() == [7, 2, 5]  # order kept
    assert batch.ntokens == int((batch.tgt_out != IDS.pad).sum()) == 2 + 4 + 0 + 3
    assert len(batch) == 3


def test_teacher_forcing_shift(examples):
    batch = collate(examples, IDS)
    real = batch.tgt_out != IDS.pad  # positions with a prediction target
    # Each input token is the previous output token (bos first), at every real position.
    shifted = torch.cat([torch.full((3, 1), IDS.bos), batch.tgt_out[:, :-1]], dim=1)
    assert torch.equal(batch.tgt_in[real], shifted[real])


def test_empty_source_keeps_one_column():
    batch = collate([example(0, [], [5])], IDS)
    assert batch.src.shape == (1, 1) and batch.src_lengths.tolist() == [0]
    with pytest.raises(ValueError):
        collate([], IDS)


def test_to_moves_every_tensor(examples):
    batch = collate(examples, IDS)
    moved = batch.to(torch.device("meta"))
    assert isinstance(moved, Batch) and moved.ntokens == batch.ntokens
    for name in ("src", "src_lengths", "tgt_in", "tgt_out", "indices"):
        assert getattr(moved, name).device.type == "meta"
        assert getattr(batch, name).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinning needs CUDA")
def test_pin_memory(examples):
    pinned = collate(examples, IDS).pin_memory()
    assert pinned.src.is_pinned() and pinned.tgt_out.is_pinned()
