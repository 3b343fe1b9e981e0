"""The encoder alignment loss (optim.encoder_alignment) against a hand computation."""

import math

import pytest
import torch

from nmt.data.batch import Batch
from nmt.training.loss import encoder_alignment_loss
from nmt.training.module import TranslationModule
from nmt.training.optim_config import OptimConfig
from tests.unit.data_helpers import separate_vocabularies
from tests.unit.test_checkpoint import MODEL

SPECIAL = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}


def _hand_alignment(src_out, src_lengths, tgt_out, tgt_lengths) -> float:
    """Mean over rows of 1 - cos of the means over each row's real positions, less the mean
    of all those means, scalar by scalar."""
    rows, size = len(src_lengths), src_out.shape[2]
    means = []
    for out, lengths in ((src_out, src_lengths), (tgt_out, tgt_lengths)):
        means.append(
            [
                [
                    sum(float(out[row, s, d]) for s in range(lengths[row])) / lengths[row]
                    for d in range(size)
                ]
                for row in range(rows)
            ]
        )
    center = [
        sum(m[row][d] for m in means for row in range(rows)) / (2 * rows) for d in range(size)
    ]
    total = 0.0
    for row in range(rows):
        a = [x - c for x, c in zip(means[0][row], center, strict=True)]
        b = [y - c for y, c in zip(means[1][row], center, strict=True)]
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        total += 1.0 - dot / norms
    return total / rows


def _mask(lengths, width):
    return torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)


def test_alignment_loss_equals_the_hand_computation_and_ignores_padding():
    torch.manual_seed(0)
    src_lengths, tgt_lengths = [5, 2, 3], [4, 4, 1]
    src_out, tgt_out = torch.randn(3, 5, 6), torch.randn(3, 4, 6)
    got = encoder_alignment_loss(src_out, _mask(src_lengths, 5), tgt_out, _mask(tgt_lengths, 4))
    assert float(got) == pytest.approx(_hand_alignment(src_out, src_lengths, tgt_out, tgt_lengths))
    src_out[~_mask(src_lengths, 5)] = 100.0  # padding: any value
    again = encoder_alignment_loss(src_out, _mask(src_lengths, 5), tgt_out, _mask(tgt_lengths, 4))
    assert float(again) == pytest.approx(float(got), rel=1e-6)
    same = encoder_alignment_loss(tgt_out, _mask(tgt_lengths, 4), tgt_out, _mask(tgt_lengths, 4))
    assert float(same) == pytest.approx(0.0, abs=1e-6)
    shifted = encoder_alignment_loss(  # a shared offset changes nothing: it is centred away
        src_out + 3.0, _mask(src_lengths, 5), tgt_out + 3.0, _mask(tgt_lengths, 4)
    )
    assert float(shifted) == pytest.approx(float(got), rel=1e-5)


def _module(weight: float, start: int = 0) -> TranslationModule:
    model = {**MODEL, "share_embeddings": True}
    optim = {"lr": 0.001, "encoder_alignment": weight, "encoder_alignment_from": start}
    module = TranslationModule(model, optim, {"beam_size": 1}, 11, 11, SPECIAL)
    module.log = lambda *args, **kwargs: None  # no Trainer here
    return module.eval()  # no dropout: the two runs below see the same network


def _batch() -> Batch:
    src = torch.tensor([[4, 5, 6, 3], [7, 8, 3, 0]])
    tgt_out = torch.tensor([[9, 10, 3], [5, 3, 0]])
    tgt_in = torch.tensor([[2, 9, 10], [2, 5, 0]])
    return Batch(src, torch.tensor([4, 3]), tgt_in, tgt_out, 5, torch.tensor([0, 1]))


def test_training_loss_adds_the_weighted_alignment_of_source_and_target_encodings():
    torch.manual_seed(0)
    module = _module(0.5)
    plain = _module(0.0)
    plain.load_state_dict(module.state_dict())
    batch = _batch()
    with torch.no_grad():
        src_enc = module.model.encode(batch.src, batch.src_lengths).enc_out
        tgt_enc = module.model.encode(batch.tgt_out, torch.tensor([3, 2])).enc_out
    expected = _hand_alignment(src_enc, [4, 3], tgt_enc, [3, 2])
    assert expected > 0.01
    with_alignment = float(module.training_step(batch, 0))
    without = float(plain.training_step(batch, 0))
    assert with_alignment == pytest.approx(without + 0.5 * expected, rel=1e-5)


def test_alignment_applies_from_its_start_update_on(monkeypatch):
    torch.manual_seed(0)
    module = _module(0.5, start=3)
    plain = _module(0.0)
    plain.load_state_dict(module.state_dict())
    batch = _batch()
    steps = iter([2, 3])  # the Trainer's global_step at two training steps
    monkeypatch.setattr(TranslationModule, "global_step", property(lambda self: next(steps)))
    before = float(module.training_step(batch, 0))
    after = float(module.training_step(batch, 1))
    monkeypatch.undo()
    without = float(plain.training_step(batch, 0))
    assert before == pytest.approx(without, rel=1e-6)
    assert after > without + 0.01


def test_alignment_trains_the_encoder_not_the_output_layer():
    module = _module(1.0)
    module.train()
    loss, _nll, _ntokens, alignment = module._loss(_batch(), align=True)
    alignment.backward()
    grad = module.model.encoder.forward_rnn.weight_ih_l0.grad
    assert grad is not None and float(grad.abs().sum()) > 0
    assert module.model.output_proj.weight.grad is None  # the alignment does not reach it


def test_alignment_needs_one_sentencepiece_model_for_both_sides():
    module = _module(1.0)
    with pytest.raises(ValueError, match=r"optim.encoder_alignment > 0 needs one SentencePiece"):
        module.attach_vocabulary(separate_vocabularies())


def test_negative_weight_or_start_is_refused():
    with pytest.raises(ValueError, match=r"optim.encoder_alignment must be >= 0"):
        OptimConfig(encoder_alignment=-0.1)
    with pytest.raises(ValueError, match=r"optim.encoder_alignment_from must be >= 0"):
        OptimConfig(encoder_alignment_from=-1)
