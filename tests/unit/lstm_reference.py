"""A hand-written LSTM (Hochreiter & Schmidhuber gates, PyTorch's i, f, g, o order) for tests."""

import torch


def hand_lstm(x: torch.Tensor, lstm: torch.nn.LSTM) -> torch.Tensor:
    """Run the LSTM equations over x (T, I) from a zero state with `lstm`'s layer-0 weights."""
    w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    b = lstm.bias_ih_l0 + lstm.bias_hh_l0
    h = c = torch.zeros(lstm.hidden_size, dtype=x.dtype)
    outs = []
    for x_t in x:
        i, f, g, o = (w_ih @ x_t + w_hh @ h + b).split(lstm.hidden_size)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outs.append(h)
    return torch.stack(outs)
