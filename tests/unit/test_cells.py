"""Recurrent units: custom LSTM variants against hand-written gate equations."""

import pytest
import torch
from torch import nn

from nmt.model.cells import CustomLSTM, GRULayer, build_rnn, is_residual
from nmt.model.config import RNN_TYPES

B, T, IN, H = 3, 5, 4, 6


def _reference_peephole(x, w_ih, b, w_hh, peep, h, c):
    """Gers & Schmidhuber 2000 peephole LSTM, one gate at a time; x (B,T,I)."""
    w_i, w_f, w_g, w_o = w_ih.split(H)
    u_i, u_f, u_g, u_o = w_hh.split(H)
    b_i, b_f, b_g, b_o = b.split(H)
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        i = torch.sigmoid(xt @ w_i.T + h @ u_i.T + b_i + peep[0] * c)
        f = torch.sigmoid(xt @ w_f.T + h @ u_f.T + b_f + peep[1] * c)
        c = f * c + i * torch.tanh(xt @ w_g.T + h @ u_g.T + b_g)
        o = torch.sigmoid(xt @ w_o.T + h @ u_o.T + b_o + peep[2] * c)
        h = o * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), h, c


def _reference_coupled(x, w_ih, b, w_hh, h, c):
    """Coupled input-forget gate LSTM: i = 1 - f; rows f, g, o."""
    w_f, w_g, w_o = w_ih.split(H)
    u_f, u_g, u_o = w_hh.split(H)
    b_f, b_g, b_o = b.split(H)
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        f = torch.sigmoid(xt @ w_f.T + h @ u_f.T + b_f)
        c = f * c + (1 - f) * torch.tanh(xt @ w_g.T + h @ u_g.T + b_g)
        h = torch.sigmoid(xt @ w_o.T + h @ u_o.T + b_o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs, 1), h, c


@pytest.fixture
def inputs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, IN, generator=gen, dtype=torch.float64)
    h0 = torch.randn(1, B, H, generator=gen, dtype=torch.float64)
    c0 = torch.randn(1, B, H, generator=gen, dtype=torch.float64)
    return x, h0, c0


def test_peephole_matches_hand_written_equations(inputs):
    x, h0, c0 = inputs
    torch.manual_seed(1)
    cell = CustomLSTM(IN, H, "peephole").double()
    out, (h, c) = cell(x, (h0, c0))
    p = cell.input_proj
    ref_out, ref_h, ref_c = _reference_peephole(
        x, p.weight, p.bias, cell.weight_hh, cell.peephole, h0[0], c0[0]
    )
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h[0], ref_h)
    torch.testing.assert_close(c[0], ref_c)


def test_coupled_matches_hand_written_equations(inputs):
    x, h0, c0 = inputs
    torch.manual_seed(2)
    cell = CustomLSTM(IN, H, "coupled").double()
    assert cell.peephole is None
    out, (h, c) = cell(x, (h0, c0))
    p = cell.input_proj
    ref_out, ref_h, ref_c = _reference_coupled(x, p.weight, p.bias, cell.weight_hh, h0[0], c0[0])
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c[0], ref_c)


def test_peephole_with_zero_peepholes_equals_nn_lstm(inputs):
    x, h0, c0 = inputs
    torch.manual_seed(3)
    lstm = nn.LSTM(IN, H, batch_first=True).double()
    cell = CustomLSTM(IN, H, "peephole").double()
    with torch.no_grad():
        cell.input_proj.weight.copy_(lstm.weight_ih_l0)
        cell.input_proj.bias.copy_(lstm.bias_ih_l0 + lstm.bias_hh_l0)
        cell.weight_hh.copy_(lstm.weight_hh_l0)
        cell.peephole.zero_()
    out, (h, c) = cell(x, (h0, c0))
    ref_out, (ref_h, ref_c) = lstm(x, (h0, c0))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)
    torch.testing.assert_close(c, ref_c)


@pytest.mark.parametrize("forget_bias, expect_keep", [(50.0, True), (-50.0, False)])
def test_coupled_gate_relation(inputs, forget_bias, expect_keep):
    """f saturated at 1 keeps c (and i = 0 admits nothing); f at 0 replaces c by the candidate."""
    x, h0, c0 = inputs
    cell = CustomLSTM(IN, H, "coupled").double()
    with torch.no_grad():
        cell.input_proj.bias[:H] = forget_bias
    _, (_, c1) = cell(x[:, :1], (h0, c0))
    if expect_keep:
        torch.testing.assert_close(c1, c0)
    else:
        g_pre = x[:, 0] @ cell.input_proj.weight[H : 2 * H].T + cell.input_proj.bias[H : 2 * H]
        g_pre = g_pre + h0[0] @ cell.weight_hh[H : 2 * H].T
        torch.testing.assert_close(c1[0], torch.tanh(g_pre))


def test_gru_layer_equals_nn_gru_and_has_no_cell(inputs):
    x, h0, _ = inputs
    layer = GRULayer(IN, H).double()
    out, (h, c) = layer(x, (h0, None))
    ref_out, ref_h = layer.rnn(x, h0)
    assert c is None
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h, ref_h)


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_state_carries_across_calls(inputs, rnn_type):
    """Running T steps at once equals two calls that hand the state over."""
    x, _, _ = inputs
    torch.manual_seed(4)
    rnn = build_rnn(rnn_type, IN, H).double()
    out, (h, c) = rnn(x, None)
    first, state = rnn(x[:, :2], None)
    second, (h2, c2) = rnn(x[:, 2:], state)
    assert out.shape == (B, T, H) and h.shape == (1, B, H)
    torch.testing.assert_close(torch.cat([first, second], 1), out)
    torch.testing.assert_close(h2, h)
    if rnn_type == "gru":
        assert c is None and c2 is None
    else:
        torch.testing.assert_close(c2, c)
        # Zero state equals passing zeros explicitly.
        zeros = torch.zeros(1, B, H, dtype=torch.float64)
        torch.testing.assert_close(rnn(x, (zeros, zeros))[0], out)


@pytest.mark.parametrize("variant", ["peephole", "coupled"])
def test_custom_cell_gradients_reach_every_parameter(inputs, variant):
    x, _, _ = inputs
    cell = CustomLSTM(IN, H, variant).double()
    out, _ = cell(x)
    out.sum().backward()
    for name, param in cell.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_build_rnn_types_and_errors():
    assert type(build_rnn("lstm", IN, H)) is nn.LSTM
    assert isinstance(build_rnn("gru", IN, H), GRULayer)
    assert not build_rnn("lstm_peephole", IN, H).coupled
    assert build_rnn("lstm_coupled", IN, H).coupled
    with pytest.raises(ValueError, match="model.rnn_type"):
        build_rnn("rnn_tanh", IN, H)
    with pytest.raises(ValueError, match="variant"):
        CustomLSTM(IN, H, "vanilla")


@pytest.mark.parametrize("num_layers", [2, 4, 8])
def test_layers_from_the_third_are_residual(num_layers):
    expected_residual = [False, False] + [True] * (num_layers - 2)
    assert [is_residual(k) for k in range(1, num_layers + 1)] == expected_residual


def test_no_residual_layer_drops_only_that_layers_residual():
    assert [is_residual(k, no_residual_layer=3) for k in range(1, 6)] == [
        False,
        False,
        False,
        True,
        True,
    ]
