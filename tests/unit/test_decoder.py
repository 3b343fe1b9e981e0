"""GNMT v2 decoder: parallel path == incremental path, wiring, DecoderState."""

import pytest
import torch
from lstm_reference import hand_lstm

from nmt.model.attention import BahdanauAttention
from nmt.model.config import RNN_TYPES
from nmt.model.decoder import DecoderState, GNMTDecoder

E, H, D, A = 5, 4, 6, 3
SRC_LENGTHS = [5, 2, 4]
B, S, T = len(SRC_LENGTHS), max(SRC_LENGTHS), 6


def _decoder(rnn_type="lstm", num_layers=3, seed=0):
    torch.manual_seed(seed)
    attention = BahdanauAttention(H, D, A, normalize=True)
    decoder = GNMTDecoder(E, H, num_layers, 0.3, rnn_type, attention, context_size=D)
    return decoder.double().eval()


def _memory(decoder, seed=1):
    gen = torch.Generator().manual_seed(seed)
    enc_out = torch.randn(B, S, D, generator=gen, dtype=torch.float64)
    src_mask = torch.arange(S).unsqueeze(0) < torch.tensor(SRC_LENGTHS).unsqueeze(1)
    tgt_emb = torch.randn(B, T, E, generator=gen, dtype=torch.float64)
    state = decoder.init_state(enc_out, decoder.attention.project_keys(enc_out), src_mask)
    return tgt_emb, state


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_parallel_path_equals_step_by_step(rnn_type):
    decoder = _decoder(rnn_type)
    tgt_emb, state0 = _memory(decoder)
    with torch.no_grad():
        out, attn, final = decoder(tgt_emb, state0)
        state, step_outs, step_attn = state0, [], []
        for t in range(T):
            o, a, state = decoder.step(tgt_emb[:, t], state)
            step_outs.append(o)
            step_attn.append(a)
    assert out.shape == (B, T, H) and attn.shape == (B, T, S)
    torch.testing.assert_close(torch.stack(step_outs, 1), out, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.stack(step_attn, 1), attn, rtol=0, atol=1e-12)
    torch.testing.assert_close(state.h, final.h, rtol=0, atol=1e-12)
    if rnn_type == "gru":
        assert state.c is None and final.c is None
    else:
        torch.testing.assert_close(state.c, final.c, rtol=0, atol=1e-12)


def test_forward_continues_from_a_given_state():
    decoder = _decoder("lstm")
    tgt_emb, state0 = _memory(decoder)
    with torch.no_grad():
        full, _, _ = decoder(tgt_emb, state0)
        _, _, middle = decoder(tgt_emb[:, :2], state0)
        rest, _, _ = decoder(tgt_emb[:, 2:], middle)
    torch.testing.assert_close(rest, full[:, 2:])


def test_against_hand_wired_reference():
    """Layer 1 -> attention query; context concatenated to layers 2 and 3; residual at layer 3."""
    decoder = _decoder("lstm", num_layers=3)
    tgt_emb, state = _memory(decoder)
    b = 0
    with torch.no_grad():
        got, _, _ = decoder(tgt_emb, state)
        layer1 = hand_lstm(tgt_emb[b], decoder.layers[0])  # (T,H)
        mask = state.src_mask[b : b + 1]
        context, _ = decoder.attention(
            layer1.unsqueeze(0), state.keys[b : b + 1], state.enc_out[b : b + 1], mask
        )
        layer2 = hand_lstm(torch.cat([layer1, context[0]], 1), decoder.layers[1])
        layer3 = hand_lstm(torch.cat([layer2, context[0]], 1), decoder.layers[2]) + layer2
    torch.testing.assert_close(got[b], layer3)


@pytest.mark.parametrize("num_layers", [4, 8])
def test_layer_sizes_and_residual_wiring(num_layers):
    decoder = _decoder("lstm", num_layers=num_layers)
    assert [layer.input_size for layer in decoder.layers] == [E] + [H + D] * (num_layers - 1)
    assert all(layer.hidden_size == H for layer in decoder.layers)

    seen = []
    for layer in decoder.layers:
        layer.register_forward_hook(lambda mod, args, out: seen.append((args[0], out[0])))
    tgt_emb, state = _memory(decoder)
    with torch.no_grad():
        result, _, _ = decoder(tgt_emb, state)
        context, _ = decoder.attention(seen[0][1], state.keys, state.enc_out, state.src_mask)
    for k in range(2, num_layers + 1):  # 1-based layer k receives [x_{k-1}, context]
        prev_in, prev_out = seen[k - 2]
        expected_x = prev_out + prev_in[..., :H] if k - 1 >= 3 else prev_out
        torch.testing.assert_close(seen[k - 1][0], torch.cat([expected_x, context], 2))
    last_in, last_out = seen[-1]
    torch.testing.assert_close(result, last_out + last_in[..., :H])


@pytest.mark.parametrize("rnn_type", ["lstm", "gru"])
def test_init_state_is_zero(rnn_type):
    decoder = _decoder(rnn_type, num_layers=4)
    _, state = _memory(decoder)
    assert state.h.shape == (4, B, H) and torch.all(state.h == 0)
    if rnn_type == "gru":
        assert state.c is None
    else:
        assert state.c.shape == (4, B, H) and torch.all(state.c == 0)


@pytest.mark.parametrize("with_cell", [True, False])
def test_index_select_reorders_every_field(with_cell):
    gen = torch.Generator().manual_seed(0)
    num_layers = 2
    state = DecoderState(
        h=torch.randn(num_layers, B, H, generator=gen),
        c=torch.randn(num_layers, B, H, generator=gen) if with_cell else None,
        enc_out=torch.randn(B, S, D, generator=gen),
        keys=torch.randn(B, S, A, generator=gen),
        src_mask=torch.rand(B, S, generator=gen) > 0.5,
    )
    idx = torch.tensor([2, 0, 0, 1, 2])
    new = state.index_select(idx)
    for j, i in enumerate(idx.tolist()):
        assert torch.equal(new.h[:, j], state.h[:, i])
        assert torch.equal(new.enc_out[j], state.enc_out[i])
        assert torch.equal(new.keys[j], state.keys[i])
        assert torch.equal(new.src_mask[j], state.src_mask[i])
        if with_cell:
            assert torch.equal(new.c[:, j], state.c[:, i])
    assert new.c is None if not with_cell else new.c.shape == (num_layers, len(idx), H)


@pytest.mark.parametrize("with_cell", [True, False])
def test_reorder_beams_equals_index_select_within_sentences(with_cell):
    gen = torch.Generator().manual_seed(1)
    sentences, beams, num_layers = 2, 3, 2
    memory = {
        "enc_out": torch.randn(sentences, S, D, generator=gen),
        "keys": torch.randn(sentences, S, A, generator=gen),
        "src_mask": torch.rand(sentences, S, generator=gen) > 0.5,
    }
    rows = sentences * beams
    state = DecoderState(
        h=torch.randn(num_layers, rows, H, generator=gen),
        c=torch.randn(num_layers, rows, H, generator=gen) if with_cell else None,
        **{k: v.repeat_interleave(beams, dim=0) for k, v in memory.items()},
    )
    idx = torch.tensor([2, 2, 0, 4, 3, 3])  # each row takes a parent of its own sentence
    expected, reordered = state.index_select(idx), state.reorder_beams(idx)
    for name, value in expected._asdict().items():
        other = getattr(reordered, name)
        assert (value is None and other is None) or torch.equal(value, other), name
