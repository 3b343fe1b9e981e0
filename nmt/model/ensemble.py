"""Ensemble decoding: several models searched as one `StepModel` (`nmt.search.protocol`).

At every step each member scores the next token from its own encoder output and decoder
state, and the ensemble's distribution is the mean of the members' probabilities, returned in
log space: log p(y) = log((1/M) sum_m p_m(y)) (computed as a logsumexp minus log M). This is
fairseq's `EnsembleModel` rule; it keeps the result a normalised distribution, so greedy
scores stay log-probabilities and the GNMT length and coverage penalties apply unchanged.
Marian instead sums (weighted) log-probabilities, a log-linear combination that is not
renormalised; both agree on an ensemble of identical members.

The attention an ensemble reports (for the coverage penalty, alignments and plots) is the mean
of the members' attention weights: each member's rows sum to 1 over the same source positions,
so the mean does too.

Members must share the target vocabulary (and the source one: the source is tokenized once);
`nmt.translator.Translator.from_checkpoint` checks that before building the ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from nmt.model.decoder import DecoderState
from nmt.model.output_subset import ShortlistModel, ShortlistState
from nmt.model.seq2seq import EncoderOutput, Seq2Seq

Member = Seq2Seq | ShortlistModel
MemberState = DecoderState | ShortlistState


class EnsembleState(NamedTuple):
    """One decoder state per member, reordered together.

    Attributes:
        members: member m's state of the same N rows.
    """

    members: tuple[MemberState, ...]

    def index_select(self, idx: Tensor) -> EnsembleState:
        return EnsembleState(tuple(state.index_select(idx) for state in self.members))

    def reorder_beams(self, idx: Tensor) -> EnsembleState:
        return EnsembleState(tuple(state.reorder_beams(idx) for state in self.members))


class EnsembleModel:
    """A `StepModel` over the mean of several members' next-token probabilities.

    Args:
        members: models following the `StepModel` protocol over the same vocabulary (full
            models, or `ShortlistModel`s built from the same shortlist mask, so that their
            positions mean the same pieces), in eval mode.
    """

    def __init__(self, members: Sequence[Member]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one model")
        self.members = tuple(members)
        self.log_count = math.log(len(self.members))

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[EncoderOutput, ...]:
        """Each member's encoder output of the batch."""
        return tuple(member.encode(src, src_lengths) for member in self.members)

    def init_state(self, enc: tuple[EncoderOutput, ...]) -> EnsembleState:
        return EnsembleState(
            tuple(member.init_state(out) for member, out in zip(self.members, enc, strict=True))
        )

    def step(
        self, prev_tokens: Tensor, state: EnsembleState
    ) -> tuple[Tensor, Tensor, EnsembleState]:
        """Advance every member by one token and combine their outputs.

        Args:
            prev_tokens: (N,) previous tokens.
            state: the members' states of N rows.

        Returns:
            log_probs: (N, V) log of the mean of the members' probabilities.
            attn: (N, S) the mean of the members' attention.
            state: the members' new states.
        """
        steps = [
            member.step(prev_tokens, member_state)
            for member, member_state in zip(self.members, state.members, strict=True)
        ]
        log_probs = torch.stack([s[0].float() for s in steps])  # (M, N, V)
        attn = torch.stack([s[1].float() for s in steps]).mean(dim=0)  # (N, S)
        mean = torch.logsumexp(log_probs, dim=0) - self.log_count  # (N, V)
        return mean, attn, EnsembleState(tuple(s[2] for s in steps))
