"""int8 dynamic quantisation adapter."""

import warnings

import pytest
import torch
from torch import nn

from nmt.model.cells import CustomLSTM, GRULayer
from nmt.model.config import Seq2SeqConfig
from nmt.model.quantize import quantize_int8, row_subset
from nmt.model.seq2seq import build_model

V, BOS = 40, 2


def _model(rnn_type):
    torch.manual_seed(0)
    layer = {"num_layers": 3, "hidden_size": 32, "dropout": 0.0}
    config = Seq2SeqConfig(
        rnn_type=rnn_type,
        embed_dim=32,
        init_range=0.3,  # large enough that the logits are well separated
        encoder=dict(layer),
        decoder=dict(layer),
        attention={"hidden_size": 32},
    )
    return build_model(config, V, V).eval()


def _decode_log_probs(model, steps=6):
    """Teacher-force a fixed random target through encode/init_state/step; (B,steps,V)."""
    gen = torch.Generator().manual_seed(1)
    src = torch.randint(4, V, (8, 7), generator=gen)
    src_lengths = torch.tensor([7, 6, 5, 4, 3, 2, 7, 1])
    tgt = torch.randint(4, V, (8, steps), generator=gen)
    tgt[:, 0] = BOS
    with torch.no_grad():
        state = model.init_state(model.encode(src, src_lengths))
        out = []
        for t in range(steps):
            log_probs, _, state = model.step(tgt[:, t], state)
            out.append(log_probs)
    return torch.stack(out, 1)


def _types(model):
    return {type(m) for m in model.modules()}


def test_lstm_and_linear_replaced_and_step_close_to_fp32():
    model = _model("lstm")
    quantized = quantize_int8(model)
    assert nn.LSTM not in _types(quantized) and nn.Linear not in _types(quantized)
    assert isinstance(quantized.decoder.layers[0], torch.ao.nn.quantized.dynamic.LSTM)
    assert isinstance(quantized.output_proj, torch.ao.nn.quantized.dynamic.Linear)
    assert type(model.decoder.layers[0]) is nn.LSTM  # the original is untouched
    ref, got = _decode_log_probs(model), _decode_log_probs(quantized)
    assert got.dtype == torch.float32
    agree = (ref.argmax(-1) == got.argmax(-1)).float().mean().item()
    assert agree >= 0.9
    assert (ref.exp() - got.exp()).abs().max() < 0.05
    assert not torch.equal(ref, got)  # int8 weights really are in use


@pytest.mark.parametrize("rnn_type", ["gru", "lstm_peephole", "lstm_coupled"])
def test_other_units_degrade_gracefully(rnn_type):
    model = _model(rnn_type)
    quantized = quantize_int8(model)
    layer = quantized.decoder.layers[1]
    if rnn_type == "gru":
        assert isinstance(layer, GRULayer)
        assert isinstance(layer.rnn, torch.ao.nn.quantized.dynamic.GRU)
    else:  # input projection quantised, recurrent weights stay float
        assert isinstance(layer, CustomLSTM)
        assert isinstance(layer.input_proj, torch.ao.nn.quantized.dynamic.Linear)
        assert layer.weight_hh.dtype == torch.float32
    ref, got = _decode_log_probs(model), _decode_log_probs(quantized)
    assert (ref.argmax(-1) == got.argmax(-1)).float().mean().item() >= 0.9


def test_deprecation_warning_silenced_only_locally():
    model = _model("lstm")
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantize_int8(model)
        warnings.warn(
            "torch.ao.quantization is deprecated (a later, unrelated warning)", stacklevel=1
        )
    messages = [str(w.message) for w in caught]
    assert messages == ["torch.ao.quantization is deprecated (a later, unrelated warning)"]
    assert warnings.filters == filters_before


@pytest.mark.parametrize("quantized", [False, True])
def test_row_subset_equals_the_whole_layers_rows(quantized):
    model = _model("lstm")
    layer = quantize_int8(model).output_proj if quantized else model.output_proj
    rows = torch.tensor([7, 2, 3, V - 1])
    x = torch.randn(6, model.output_proj.in_features)
    with torch.no_grad():
        expected = layer(x)[:, rows]
        got = row_subset(layer, rows)(x)
        # against the dequantised rows: int8 multiplies quantised activations, not x itself
        weight = layer.weight().dequantize() if quantized else layer.weight
        bias = layer.bias() if quantized else layer.bias
        dequantised = nn.functional.linear(x, weight[rows], bias[rows])
    assert torch.equal(got, expected)
    assert torch.equal(got, dequantised) != quantized


def test_int8_rows_unpack_the_layer_once():
    layer = quantize_int8(_model("lstm")).output_proj
    unpack, calls = layer.weight, []
    layer.weight = lambda: calls.append(1) or unpack()
    x = torch.randn(2, layer.in_features)
    first = row_subset(layer, torch.tensor([1, 2]))(x)
    second = row_subset(layer, torch.tensor([2, 5]))(x)  # another batch's shortlist
    assert len(calls) == 1
    assert torch.equal(first[:, 1], second[:, 0])
