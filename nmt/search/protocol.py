"""The decoding interface that search relies on, as structural types.

Search never imports the model: any object with `encode`, `init_state` and `step`
of the shapes below can be decoded (the real `Seq2Seq`, a quantised copy, or a
scripted fake in the tests).
"""

from __future__ import annotations

from typing import Protocol

import torch


class SearchState(Protocol):
    """Decoder state of a batch of rows, immutable from the point of view of search."""

    def index_select(self, idx: torch.Tensor) -> SearchState:
        """Select, reorder or repeat rows along the batch dimension.

        Args:
            idx: (N,) row indices into the current batch.

        Returns:
            A new state with N rows; row n is a copy of row `idx[n]`.
        """
        ...

    def reorder_beams(self, idx: torch.Tensor) -> SearchState:
        """Like `index_select` for an `idx` that keeps every row within its sentence.

        Beam search reorders hypotheses only among the beams of one sentence, whose
        encoder memory is identical, so a state may skip copying per-sentence data here.

        Args:
            idx: (N,) row indices; row n and row `idx[n]` decode the same sentence.
        """
        ...


class StepModel(Protocol):
    """A sequence-to-sequence model that can be decoded one target token at a time."""

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> object:
        """Encode a padded source batch.

        Args:
            src: (B, S) source token ids, padded on the right.
            src_lengths: (B,) number of real tokens in each row.

        Returns:
            An opaque encoder output, only ever passed to `init_state`.
        """
        ...

    def init_state(self, enc: object) -> SearchState:
        """Build the decoder state of B rows from the encoder output."""
        ...

    def step(
        self, prev_tokens: torch.Tensor, state: SearchState
    ) -> tuple[torch.Tensor, torch.Tensor, SearchState]:
        """Advance the decoder by one token.

        Args:
            prev_tokens: (N,) previous target token of each row (bos at the first step).
            state: decoder state of N rows; not mutated.

        Returns:
            log_probs: (N, V) normalised log-probabilities of the next token.
            attn: (N, S) attention weights over source positions, 0 on padding.
            state: the new decoder state of N rows.
        """
        ...
