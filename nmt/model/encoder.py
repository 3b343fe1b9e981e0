"""GNMT encoder (Wu et al. 2016, sec. 3; layer wiring as in NVIDIA's GNMT v2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.model.cells import build_rnn, is_residual, layer_norms, normalise


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `length` positions and leave its padding in place.

    The map is its own inverse, so applying it twice restores the input.

    Args:
        x: Padded sequences (B,S,D), padding at the end.
        lengths: (B,) real lengths.

    Returns:
        (B,S,D) with row b equal to x[b, len_b-1 ... 0] followed by x[b, len_b:].
    """
    positions = torch.arange(x.shape[1], device=x.device)  # (S,)
    reversed_positions = lengths.to(x.device).unsqueeze(1) - 1 - positions  # (B,S)
    index = torch.where(reversed_positions >= 0, reversed_positions, positions)  # (B,S)
    return x.gather(1, index.unsqueeze(2).expand_as(x))


class GNMTEncoder(nn.Module):
    """Bidirectional first layer, unidirectional layers 2..L, residual connections from layer 3.

    Padded batches are exact without PackedSequence (which is 5-15x slower on CPU,
    pytorch #149194): padding sits at the end, so a forward-direction pass over the padded
    tensor never lets it reach a real position, and the backward direction runs a
    forward-direction RNN over each sequence reversed within its own length. Dropout is applied
    to the input of every layer, including the embeddings (as in GNMT v2).

    Args:
        input_size: Embedding size E.
        hidden_size: Hidden size H of every direction and layer (`model.encoder.hidden_size`).
        num_layers: Number of layers L >= 2 (`model.encoder.num_layers`, checked by its config).
        dropout: Dropout probability on layer inputs (`model.encoder.dropout`).
        rnn_type: Recurrent unit (`model.rnn_type`).
        layer_norm: Normalise every layer's output (after the residual sum; `model.layer_norm`).
        no_residual_layer: 1-based layer >= 3 without its residual connection, or None
            (`model.encoder.no_residual_layer`, see `nmt.model.cells.is_residual`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        rnn_type: str,
        layer_norm: bool = False,
        no_residual_layer: int | None = None,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.no_residual_layer = no_residual_layer
        self.forward_rnn = build_rnn(rnn_type, input_size, hidden_size)
        self.backward_rnn = build_rnn(rnn_type, input_size, hidden_size)
        self.layers = nn.ModuleList(
            [build_rnn(rnn_type, 2 * hidden_size, hidden_size)]
            + [build_rnn(rnn_type, hidden_size, hidden_size) for _ in range(num_layers - 2)]
        )
        self.dropout = nn.Dropout(dropout)
        sizes = [2 * hidden_size] + [hidden_size] * (num_layers - 1)
        self.norms = layer_norms(sizes) if layer_norm else None

    @property
    def output_size(self) -> int:
        """Feature size of the encoder output (the top layer is unidirectional)."""
        return self.hidden_size

    def bidirectional_layer(self, x: Tensor, src_lengths: Tensor) -> Tensor:
        """Run layer 1 in both directions, each exact on padded input.

        Args:
            x: Layer input (B,S,E), padding at the end.
            src_lengths: (B,) real lengths.

        Returns:
            (B,S,2H): forward-direction outputs, then backward-direction outputs.
        """
        fwd, _ = self.forward_rnn(x)  # (B,S,H)
        bwd, _ = self.backward_rnn(reverse_within_lengths(x, src_lengths))  # (B,S,H)
        return torch.cat([fwd, reverse_within_lengths(bwd, src_lengths)], dim=2)

    def forward(self, src_emb: Tensor, src_lengths: Tensor) -> Tensor:
        """Encode a padded batch.

        Args:
            src_emb: Source embeddings (B,S,E), padding at the end.
            src_lengths: (B,) real source lengths.

        Returns:
            enc_out (B,S,H). Positions past a sequence's length hold unspecified values.
        """
        x = self.bidirectional_layer(self.dropout(src_emb), src_lengths)  # (B,S,2H)
        x = normalise(self.norms, x, 0)
        for index, rnn in enumerate(self.layers, start=2):
            out, _ = rnn(self.dropout(x))  # (B,S,H)
            x = normalise(
                self.norms,
                out + x if is_residual(index, self.no_residual_layer) else out,
                index - 1,
            )
        return x
