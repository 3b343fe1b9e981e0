"""Recurrent units behind one interface, chosen by `model.rnn_type`.

Every unit is a single unidirectional, batch-first layer with the `nn.LSTM` calling convention
`forward(x (B,T,I), state) -> (out (B,T,H), state)`. The state is a pair `(h, c)` of (1,B,H)
tensors, exactly what `nn.LSTM` takes; a GRU has no cell, so its state is `(h, None)`. `state=None`
starts from zeros.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nmt.model.config import RNN_TYPES

LayerState = tuple[Tensor, Tensor | None]


class GRULayer(nn.Module):
    """`nn.GRU` adapted to the `(h, c)` state pair (c is always None).

    The GRU is a child module (not a subclass) so that dynamic quantisation still recognises it.

    Args:
        input_size: Input features I.
        hidden_size: Hidden size H.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def forward(self, x: Tensor, state: LayerState | None = None) -> tuple[Tensor, LayerState]:
        """Run the GRU over a sequence.

        Args:
            x: Inputs (B,T,I).
            state: `(h (1,B,H), None)` or None for zeros.

        Returns:
            Outputs (B,T,H) and the final state `(h (1,B,H), None)`.
        """
        out, h = self.rnn(x, None if state is None else state[0])
        return out, (h, None)


class CustomLSTM(nn.Module):
    """LSTM variants of Greff et al. 2017 ("LSTM: A Search Space Odyssey").

    - `variant="peephole"` (Gers & Schmidhuber 2000): diagonal peephole weights let the input and
      forget gates see c_{t-1} and the output gate see c_t:
      i = σ(W_i x + U_i h + p_i ⊙ c_{t-1} + b_i), f likewise with p_f,
      c_t = f ⊙ c_{t-1} + i ⊙ tanh(W_g x + U_g h + b_g), o = σ(W_o x + U_o h + p_o ⊙ c_t + b_o),
      h_t = o ⊙ tanh(c_t). Gate rows are ordered i, f, g, o as in `nn.LSTM`, so with p = 0 this
      is `nn.LSTM` with `weight_ih = input_proj.weight`, `bias_ih + bias_hh = input_proj.bias`.
    - `variant="coupled"` (CIFG): no input gate; i = 1 - f. Gate rows are f, g, o.

    The input projection of all T steps is one matmul; only the recurrent part loops over time.
    The loop is plain eager PyTorch (`torch.jit.script` is deprecated in torch 2.13); wrap the
    model in `torch.compile` to fuse it further.

    Args:
        input_size: Input features I.
        hidden_size: Hidden size H.
        variant: "peephole" or "coupled".
    """

    def __init__(self, input_size: int, hidden_size: int, variant: str) -> None:
        super().__init__()
        if variant not in ("peephole", "coupled"):
            raise ValueError(f"CustomLSTM variant must be 'peephole' or 'coupled', got {variant!r}")
        self.hidden_size = hidden_size
        self.coupled = variant == "coupled"
        num_gates = 3 if self.coupled else 4
        self.input_proj = nn.Linear(input_size, num_gates * hidden_size)
        self.weight_hh = nn.Parameter(torch.empty(num_gates * hidden_size, hidden_size))
        if self.coupled:
            self.register_parameter("peephole", None)
        else:
            # Rows: p_i, p_f, p_o.
            self.peephole = nn.Parameter(torch.empty(3, hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)), the `nn.LSTM` default."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for param in self.parameters():
            nn.init.uniform_(param, -bound, bound)

    def forward(self, x: Tensor, state: LayerState | None = None) -> tuple[Tensor, LayerState]:
        """Run the cell over a sequence.

        Args:
            x: Inputs (B,T,I).
            state: `(h (1,B,H), c (1,B,H))` or None for zeros.

        Returns:
            Outputs (B,T,H) and the final state `(h (1,B,H), c (1,B,H))`.
        """
        batch_size, num_steps, _ = x.shape
        if state is None:
            h = x.new_zeros(batch_size, self.hidden_size)
            c = x.new_zeros(batch_size, self.hidden_size)
        else:
            h, c = state[0][0], state[1][0]  # (B,H) each
        gates_x = self.input_proj(x)  # (B,T,G*H)
        weight_hh_t = self.weight_hh.t()  # (H,G*H)
        outputs = []
        for t in range(num_steps):
            gates = torch.addmm(gates_x[:, t], h, weight_hh_t)  # (B,G*H)
            h, c = self._coupled_step(gates, c) if self.coupled else self._peephole_step(gates, c)
            outputs.append(h)
        out = torch.stack(outputs, dim=1)  # (B,T,H)
        return out, (h.unsqueeze(0), c.unsqueeze(0))

    def _peephole_step(self, gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Advance one step from pre-activations gates (B,4H) and c_{t-1} (B,H)."""
        i_pre, f_pre, g_pre, o_pre = gates.chunk(4, dim=1)
        peep_i, peep_f, peep_o = self.peephole
        i = torch.sigmoid(i_pre + peep_i * c)
        f = torch.sigmoid(f_pre + peep_f * c)
        c = f * c + i * torch.tanh(g_pre)
        o = torch.sigmoid(o_pre + peep_o * c)
        return o * torch.tanh(c), c

    @staticmethod
    def _coupled_step(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """Advance one step from pre-activations gates (B,3H) and c_{t-1} (B,H)."""
        f_pre, g_pre, o_pre = gates.chunk(3, dim=1)
        f = torch.sigmoid(f_pre)
        c = f * c + (1.0 - f) * torch.tanh(g_pre)
        return torch.sigmoid(o_pre) * torch.tanh(c), c


def build_rnn(rnn_type: str, input_size: int, hidden_size: int) -> nn.Module:
    """Create one unidirectional batch-first recurrent layer of the given type.

    Args:
        rnn_type: One of `RNN_TYPES` (`model.rnn_type`).
        input_size: Input features I.
        hidden_size: Hidden size H.

    Returns:
        A module with `forward(x (B,T,I), state) -> (out (B,T,H), state)`, see module docstring.
    """
    if rnn_type == "lstm":
        return nn.LSTM(input_size, hidden_size, batch_first=True)
    if rnn_type == "gru":
        return GRULayer(input_size, hidden_size)
    if rnn_type in ("lstm_peephole", "lstm_coupled"):
        return CustomLSTM(input_size, hidden_size, variant=rnn_type.removeprefix("lstm_"))
    raise ValueError(f"model.rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")


def is_residual(layer: int, no_residual_layer: int | None = None) -> bool:
    """Tell whether 1-based layer `layer` of a GNMT stack adds its input to its output.

    Layers 3..L are residual in the encoder and in the decoder (Wu et al. 2016, sec. 3): the
    residual sum needs equal input and output sizes, which layers 1 and 2 do not have. Layer
    `no_residual_layer` (`model.encoder.no_residual_layer` / `model.decoder.no_residual_layer`,
    None: none) is not: without the residual around a middle encoder layer, the encoder
    outputs carry less of the source positions and language (Liu et al. 2021), which helps
    zero-shot translation.
    """
    return layer >= 3 and layer != no_residual_layer


def layer_norms(sizes: list[int]) -> nn.ModuleList:
    """One `nn.LayerNorm` per layer output size (`model.layer_norm`)."""
    return nn.ModuleList(nn.LayerNorm(size) for size in sizes)


def normalise(norms: nn.ModuleList | None, x: Tensor, layer: int) -> Tensor:
    """Layer-normalise the output of 0-based layer `layer`; `norms` None (no layer_norm) keeps x."""
    return x if norms is None else norms[layer](x)
