"""The output layer restricted to a subset of the vocabulary (decoding over a shortlist).

`ShortlistModel` wraps a `Seq2Seq` as a `StepModel` (`nmt.search.protocol`) for one batch whose
token ids are positions in the batch's shortlist vocabulary (the union of its sentences'
shortlists, `always` first): search runs unchanged on (N, V') log-probabilities, and `to_vocab`
maps the ids it returns back to the full vocabulary. Each row is renormalised over its own
sentence's shortlist (the others get -inf), which the state carries through the search's
reordering and shrinking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from nmt.model.decoder import DecoderState
from nmt.model.quantize import row_subset
from nmt.model.seq2seq import EncoderOutput, Seq2Seq


class ShortlistState(NamedTuple):
    """The decoder state plus each row's additive mask over the shortlist vocabulary.

    Attributes:
        inner: the model's decoder state.
        bias: (N, V') 0 where the row's sentence may produce the piece, -inf elsewhere.
    """

    inner: DecoderState
    bias: Tensor

    def index_select(self, idx: Tensor) -> ShortlistState:
        return ShortlistState(self.inner.index_select(idx), self.bias.index_select(0, idx))

    def reorder_beams(self, idx: Tensor) -> ShortlistState:
        """Rows stay within their sentence, whose mask is the same for every beam."""
        return self._replace(inner=self.inner.reorder_beams(idx))


class ShortlistModel:
    """A `StepModel` over one batch's shortlist.

    Args:
        model: the full model (float or int8-quantised), in eval mode.
        allowed: (B, V) bool, the target ids each sentence of the batch may produce (e.g.
            `nmt.data.shortlist.Shortlist.allowed`); it must allow `always`.
        always: ids every sentence may produce or be fed (bos, eos, unk); they take shortlist
            positions 0, 1, ... in this order.
    """

    def __init__(
        self,
        model: Seq2Seq,
        allowed: Tensor,
        always: Sequence[int],
    ) -> None:
        self.model = model
        self.always = list(always)
        allowed = allowed.cpu()  # (B, V)
        used = allowed.any(dim=0)
        used[self.always] = False
        device = next(model.parameters()).device
        self.vocab = torch.cat([torch.tensor(self.always), used.nonzero().view(-1)]).to(device)
        self.bias = torch.zeros(allowed.shape[0], len(self.vocab), device=device)  # (B, V')
        self.bias.masked_fill_(~allowed[:, self.vocab.cpu()].to(device), float("-inf"))
        self.project = row_subset(model.output_proj, self.vocab)  # (N,H) -> (N,V'); int8 stays

    def position(self, token_id: int) -> int:
        """The shortlist id of one of the `always` ids."""
        return self.always.index(token_id)

    def to_vocab(self, ids: list[int]) -> list[int]:
        """Map shortlist ids back to full-vocabulary ids."""
        return self.vocab[ids].tolist() if ids else []

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.model.encode(src, src_lengths)

    def init_state(self, enc: EncoderOutput) -> ShortlistState:
        return ShortlistState(self.model.init_state(enc), self.bias)

    def step(
        self, prev_tokens: Tensor, state: ShortlistState
    ) -> tuple[Tensor, Tensor, ShortlistState]:
        """`Seq2Seq.step` with ids and log-probabilities in shortlist positions (N,V')."""
        out, attn, inner = self.model.decode_step(self.vocab[prev_tokens], state.inner)  # (N,H)
        logits = self.project(out).float() + state.bias  # (N,V')
        return torch.log_softmax(logits, dim=-1), attn, ShortlistState(inner, state.bias)
