"""GNMT v2 decoder with a parallel (teacher forcing) and an incremental path."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from nmt.model.attention import BahdanauAttention
from nmt.model.cells import LayerState, build_rnn, is_residual, layer_norms, normalise


class DecoderState(NamedTuple):
    """Everything one decoding step needs, batch-indexable as a unit.

    Attributes:
        h: Hidden states of all layers (L,B,H).
        c: Cell states (L,B,H), or None for GRU.
        enc_out: Encoder outputs, the attention values (B,S,D).
        keys: Projected attention keys (B,S,A).
        src_mask: (B,S) bool, True on real source tokens.
    """

    h: Tensor
    c: Tensor | None
    enc_out: Tensor
    keys: Tensor
    src_mask: Tensor

    def index_select(self, idx: Tensor) -> DecoderState:
        """Reorder or expand the batch, e.g. `state.index_select(beam_origin)`.

        Args:
            idx: (B',) long indices into the batch dimension.

        Returns:
            A state of batch size B' whose row b is row idx[b] of this state.
        """
        return DecoderState(
            h=self.h.index_select(1, idx),
            c=None if self.c is None else self.c.index_select(1, idx),
            enc_out=self.enc_out.index_select(0, idx),
            keys=self.keys.index_select(0, idx),
            src_mask=self.src_mask.index_select(0, idx),
        )

    def reorder_beams(self, idx: Tensor) -> DecoderState:
        """Reorder rows among the beams of each sentence: only the recurrent state moves.

        The encoder memory (enc_out, keys, src_mask) of all beams of a sentence is the same,
        so it is shared instead of copied at every search step.

        Args:
            idx: (B',) long indices; row b and row idx[b] belong to the same sentence.
        """
        return self._replace(
            h=self.h.index_select(1, idx),
            c=None if self.c is None else self.c.index_select(1, idx),
        )

    def layer(self, index: int) -> LayerState:
        """Return layer `index`'s (0-based) recurrent state as `(h (1,B,H), c (1,B,H) | None)`."""
        c = None if self.c is None else self.c[index : index + 1]
        return self.h[index : index + 1], c


class GNMTDecoder(nn.Module):
    """Layer 1 over the target embeddings gives the attention query; the context is concatenated
    to the input of every layer 2..L; layers 3..L are residual (Wu et al. 2016 sec. 3 as changed
    by NVIDIA's GNMT v2, which attends from the first layer's output instead of the bottom
    layer's previous output). Dropout is applied to every layer's input, not to the context.

    `forward` runs each layer once over all T target positions and attends from all T queries in
    one batched computation; `step` is the same computation for T = 1 with the state carried by
    the caller, so the two paths share every parameter.

    Args:
        input_size: Target embedding size E.
        hidden_size: Hidden size H (`model.decoder.hidden_size`).
        num_layers: Number of layers L >= 2 (`model.decoder.num_layers`, checked by its config).
        dropout: Dropout probability on layer inputs (`model.decoder.dropout`).
        rnn_type: Recurrent unit (`model.rnn_type`).
        attention: The attention module; its key size is the encoder output size D.
        context_size: Encoder output size D.
        layer_norm: Normalise every layer's output (after the residual sum; `model.layer_norm`).
        bridge: Start from h = tanh(W · mean encoder output) instead of zeros (`model.bridge`).
        no_residual_layer: 1-based layer >= 3 without its residual connection, or None
            (`model.decoder.no_residual_layer`, see `nmt.model.cells.is_residual`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        rnn_type: str,
        attention: BahdanauAttention,
        context_size: int,
        layer_norm: bool = False,
        bridge: bool = False,
        no_residual_layer: int | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.no_residual_layer = no_residual_layer
        self.num_layers = num_layers
        self.is_lstm_like = rnn_type != "gru"
        self.attention = attention
        self.layers = nn.ModuleList(
            [build_rnn(rnn_type, input_size, hidden_size)]
            + [
                build_rnn(rnn_type, hidden_size + context_size, hidden_size)
                for _ in range(num_layers - 1)
            ]
        )
        self.dropout = nn.Dropout(dropout)
        self.norms = layer_norms([hidden_size] * num_layers) if layer_norm else None
        self.bridge = nn.Linear(context_size, num_layers * hidden_size) if bridge else None

    def init_state(self, enc_out: Tensor, keys: Tensor, src_mask: Tensor) -> DecoderState:
        """Build the initial state: recurrent states plus the encoder memory.

        Args:
            enc_out: Encoder outputs (B,S,D).
            keys: Projected keys (B,S,A).
            src_mask: (B,S) bool, True on real tokens.

        Returns:
            DecoderState with h of shape (L,B,H), zeros or from the bridge, and c zeros
            (None for GRU).
        """
        if self.bridge is None:
            h = enc_out.new_zeros(self.num_layers, enc_out.shape[0], self.hidden_size)
        else:
            real = src_mask.unsqueeze(2).to(enc_out.dtype)  # (B,S,1)
            mean = (enc_out * real).sum(1) / real.sum(1)  # (B,D): padding excluded
            h = torch.tanh(self.bridge(mean))  # (B,L*H)
            h = (
                h.view(-1, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
            )  # (L,B,H)
        c = torch.zeros_like(h) if self.is_lstm_like else None
        return DecoderState(h=h, c=c, enc_out=enc_out, keys=keys, src_mask=src_mask)

    def forward(self, tgt_emb: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, DecoderState]:
        """Decode all T positions at once (teacher forcing).

        Args:
            tgt_emb: Target input embeddings (B,T,E).
            state: State before the first position (usually `init_state`).

        Returns:
            Top-layer outputs (B,T,H), attention weights (B,T,S), state after position T.
        """
        x = self.dropout(tgt_emb)
        x, first_state = self.layers[0](x, state.layer(0))  # (B,T,H)
        x = normalise(self.norms, x, 0)
        context, attn = self.attention(x, state.keys, state.enc_out, state.src_mask)  # (B,T,D)
        layer_states = [first_state]
        for index in range(1, self.num_layers):
            rnn_in = torch.cat([self.dropout(x), context], dim=2)  # (B,T,H+D)
            out, layer_state = self.layers[index](rnn_in, state.layer(index))  # (B,T,H)
            x = normalise(
                self.norms,
                out + x if is_residual(index + 1, self.no_residual_layer) else out,
                index,
            )
            layer_states.append(layer_state)
        return x, attn, self._next_state(layer_states, state)

    def step(self, emb: Tensor, state: DecoderState) -> tuple[Tensor, Tensor, DecoderState]:
        """Decode one position, calling every layer on a length-1 sequence.

        Args:
            emb: Embeddings of the previous tokens (B,E).
            state: State before this position.

        Returns:
            Top-layer output (B,H), attention weights (B,S), state after this position.
        """
        out, attn, state = self.forward(emb.unsqueeze(1), state)  # (B,1,H), (B,1,S)
        return out.squeeze(1), attn.squeeze(1), state

    def _next_state(self, layer_states: list[LayerState], state: DecoderState) -> DecoderState:
        """Stack the per-layer (1,B,H) states into (L,B,H) and keep the encoder memory."""
        h = torch.cat([s[0] for s in layer_states], dim=0)  # (L,B,H)
        c = torch.cat([s[1] for s in layer_states], dim=0) if self.is_lstm_like else None
        return state._replace(h=h, c=c)
