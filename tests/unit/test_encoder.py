"""GNMT encoder: exact padding without packing, layer wiring, hand-rolled reference."""

import pytest
import torch
from lstm_reference import hand_lstm

from nmt.model.config import RNN_TYPES
from nmt.model.encoder import GNMTEncoder, reverse_within_lengths

E, H = 5, 4
LENGTHS = [6, 3, 1, 4]


def _encoder(rnn_type="lstm", num_layers=3, seed=0, no_residual_layer=None):
    torch.manual_seed(seed)
    encoder = GNMTEncoder(
        E, H, num_layers, dropout=0.3, rnn_type=rnn_type, no_residual_layer=no_residual_layer
    )
    return encoder.double().eval()


def _padded_batch(seed=1):
    gen = torch.Generator().manual_seed(seed)
    # Padding positions hold random values too: they must not matter.
    return torch.randn(len(LENGTHS), max(LENGTHS), E, generator=gen, dtype=torch.float64)


def test_reverse_within_lengths_by_hand():
    x = torch.arange(8).view(2, 4, 1)
    out = reverse_within_lengths(x, torch.tensor([3, 4]))
    assert out.squeeze(2).tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
    torch.testing.assert_close(reverse_within_lengths(out, torch.tensor([3, 4])), x)


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_padding_does_not_change_real_positions(rnn_type):
    encoder = _encoder(rnn_type)
    x, lengths = _padded_batch(), torch.tensor(LENGTHS)
    with torch.no_grad():
        batched_bi = encoder.bidirectional_layer(x, lengths)
        batched = encoder(x, lengths)
        for b, n in enumerate(LENGTHS):
            alone = x[b : b + 1, :n]
            alone_bi = encoder.bidirectional_layer(alone, torch.tensor([n]))[0]
            # Both halves: forward direction [:H], backward direction [H:].
            torch.testing.assert_close(batched_bi[b, :n, :H], alone_bi[:, :H], rtol=0, atol=1e-12)
            torch.testing.assert_close(batched_bi[b, :n, H:], alone_bi[:, H:], rtol=0, atol=1e-12)
            torch.testing.assert_close(
                batched[b, :n], encoder(alone, torch.tensor([n]))[0], rtol=0, atol=1e-12
            )


@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_directions_read_the_right_way(rnn_type):
    """Backward half == backward RNN over the flipped sentence, flipped back."""
    encoder = _encoder(rnn_type)
    x, lengths = _padded_batch(), torch.tensor(LENGTHS)
    with torch.no_grad():
        bi = encoder.bidirectional_layer(x, lengths)
        for b, n in enumerate(LENGTHS):
            sentence = x[b : b + 1, :n]
            fwd, _ = encoder.forward_rnn(sentence)
            bwd, _ = encoder.backward_rnn(sentence.flip(1))
            torch.testing.assert_close(bi[b, :n, :H], fwd[0])
            torch.testing.assert_close(bi[b, :n, H:], bwd[0].flip(0))


def test_whole_encoder_against_hand_rolled_lstm():
    encoder = _encoder("lstm", num_layers=3)
    n = LENGTHS[0]
    x = _padded_batch()[0, :n]  # (S,E)
    with torch.no_grad():
        got = encoder(x.unsqueeze(0), torch.tensor([n]))[0]
        fwd = hand_lstm(x, encoder.forward_rnn)
        bwd = hand_lstm(x.flip(0), encoder.backward_rnn).flip(0)
        layer2 = hand_lstm(torch.cat([fwd, bwd], 1), encoder.layers[0])
        layer3 = hand_lstm(layer2, encoder.layers[1]) + layer2  # residual from layer 3
    torch.testing.assert_close(got, layer3)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_middle_layer_without_residual_against_hand_rolled_lstm(layer_norm):
    """model.encoder.no_residual_layer=3 (Liu et al. 2021): layer 3 of 4 outputs its LSTM alone."""
    torch.manual_seed(0)
    encoder = GNMTEncoder(E, H, 4, 0.3, "lstm", layer_norm, no_residual_layer=3).double().eval()
    torch.manual_seed(0)
    default = GNMTEncoder(E, H, 4, 0.3, "lstm", layer_norm).double().eval()
    n = LENGTHS[0]
    x = _padded_batch()[0, :n]  # (S,E)

    def norm(y, layer):
        return encoder.norms[layer](y) if layer_norm else y

    with torch.no_grad():
        got = encoder(x.unsqueeze(0), torch.tensor([n]))[0]
        fwd = hand_lstm(x, encoder.forward_rnn)
        bwd = hand_lstm(x.flip(0), encoder.backward_rnn).flip(0)
        layer1 = norm(torch.cat([fwd, bwd], 1), 0)
        layer2 = norm(hand_lstm(layer1, encoder.layers[0]), 1)
        layer3 = norm(hand_lstm(layer2, encoder.layers[1]), 2)  # no residual here
        layer4 = norm(hand_lstm(layer3, encoder.layers[2]) + layer3, 3)  # residual kept
        with_residual = default(x.unsqueeze(0), torch.tensor([n]))[0]
    torch.testing.assert_close(got, layer4)
    assert (got - with_residual).abs().max() > 1e-3  # same weights, other wiring


def test_middle_layer_without_residual_keeps_padding_exact():
    encoder = _encoder("lstm", num_layers=4, no_residual_layer=3)
    x, lengths = _padded_batch(), torch.tensor(LENGTHS)
    with torch.no_grad():
        batched = encoder(x, lengths)
        for b, n in enumerate(LENGTHS):
            alone = encoder(x[b : b + 1, :n], torch.tensor([n]))[0]
            torch.testing.assert_close(batched[b, :n], alone, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_layers", [4, 8])
def test_layer_sizes_and_residual_wiring(num_layers):
    encoder = _encoder("lstm", num_layers=num_layers)
    assert (encoder.forward_rnn.input_size, encoder.forward_rnn.hidden_size) == (E, H)
    assert (encoder.backward_rnn.input_size, encoder.backward_rnn.hidden_size) == (E, H)
    assert len(encoder.layers) == num_layers - 1
    assert [layer.input_size for layer in encoder.layers] == [2 * H] + [H] * (num_layers - 2)
    assert all(layer.hidden_size == H for layer in encoder.layers)

    # Functional check with hooks: what each layer receives is what the previous one produced,
    # plus its input exactly when that layer is residual.
    seen = []
    for layer in encoder.layers:
        layer.register_forward_hook(lambda mod, args, out: seen.append((args[0], out[0])))
    x, lengths = _padded_batch(), torch.tensor(LENGTHS)
    with torch.no_grad():
        result = encoder(x, lengths)
        torch.testing.assert_close(seen[0][0], encoder.bidirectional_layer(x, lengths))
    for k, (layer_in, layer_out) in enumerate(seen, start=2):
        nxt = seen[k - 1][0] if k - 1 < len(seen) else result
        torch.testing.assert_close(nxt, layer_out + layer_in if k >= 3 else layer_out)


def test_dropout_is_active_only_in_training():
    encoder = _encoder("lstm")
    x, lengths = _padded_batch(), torch.tensor(LENGTHS)
    encoder.train()
    assert not torch.equal(encoder(x, lengths), encoder(x, lengths))
    encoder.eval()
    assert torch.equal(encoder(x, lengths), encoder(x, lengths))
