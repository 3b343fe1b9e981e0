"""TranslationModule settings that change how, not what, a training step computes."""

import pytest
import torch

from nmt.data.batch import Batch
from nmt.training.module import TranslationModule
from nmt.training.optim_config import OptimConfig
from tests.unit.test_checkpoint import MODEL

SPECIAL = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}


def _module(kib: int | None) -> TranslationModule:
    torch.manual_seed(0)
    optim = {"lr": 0.001, "attention_chunk_kib": kib}
    return TranslationModule(MODEL, optim, {"beam_size": 1}, 11, 11, SPECIAL)


def _batch() -> Batch:
    src = torch.tensor([[4, 5, 6, 7, 3], [8, 9, 3, 0, 0], [10, 4, 5, 3, 0]])
    tgt_out = torch.tensor([[5, 6, 7, 3], [9, 3, 0, 0], [4, 8, 3, 0]])
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 9, 3, 0], [2, 4, 8, 3]])
    return Batch(src, torch.tensor([5, 3, 4]), tgt_in, tgt_out, 9, torch.arange(3))


def test_attention_chunks_are_set_at_fit_start_and_leave_loss_and_gradients_unchanged():
    # 1 KiB: blocks of 4 decoder steps of one row (5 source positions x 8 x 4 bytes = 160 B)
    chunked, plain = _module(1), _module(None)
    chunked.on_fit_start(), plain.on_fit_start()
    assert chunked.model.decoder.attention.chunk_bytes == 1024
    assert plain.model.decoder.attention.chunk_bytes is None
    results = []
    for module in (chunked, plain):
        loss, _nll, _ntokens, _ = module._loss(_batch())
        loss.backward()
        results.append([loss.detach(), *(p.grad for p in module.parameters())])
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_attention_chunk_below_one_kib_is_refused():
    with pytest.raises(ValueError, match=r"optim.attention_chunk_kib must be >= 1 or null"):
        OptimConfig(attention_chunk_kib=0)
