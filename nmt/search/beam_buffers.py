"""Buffers of the batched beam search and their bookkeeping (see `nmt.search.beam`).

Live hypotheses, finished pools and candidates are kept per sentence; `_shrink` drops
the sentences that are done so that their rows are no longer decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.search.penalties import coverage_penalty, length_penalty
from nmt.search.protocol import SearchState


@dataclass
class _Alive:
    """The K live hypotheses of every sentence.

    Attributes:
        log_probs: (B, K) cumulative log P of each hypothesis; -inf for empty slots.
        tokens: (B*K, T) tokens emitted so far (columns beyond the current step unused).
        attn_sum: (B*K, S) attention summed over the steps taken so far.
        attn: (B*K, T, S) attention history, only when it is returned.
    """

    log_probs: torch.Tensor
    tokens: torch.Tensor
    attn_sum: torch.Tensor
    attn: torch.Tensor | None


@dataclass
class _Pool:
    """The K best finished hypotheses of every sentence, sorted by GNMT score.

    Attributes:
        scores: (B, K) final scores; -inf for empty slots.
        tokens: (B, K, T) output tokens (eos excluded by `lengths`).
        lengths: (B, K) number of output tokens.
        attn: (B, K, T, S) attention history, only when it is returned.
        count: (B,) how many hypotheses of the sentence have finished so far.
    """

    scores: torch.Tensor
    tokens: torch.Tensor
    lengths: torch.Tensor
    attn: torch.Tensor | None
    count: torch.Tensor


@dataclass
class _Candidates:
    """The 2K best one-token extensions of every sentence, sorted by log P.

    Attributes:
        log_probs: (B, 2K) cumulative log P of the extension.
        parents: (B, 2K) flat row (in B*K) of the hypothesis being extended.
        tokens: (B, 2K) the appended token.
    """

    log_probs: torch.Tensor
    parents: torch.Tensor
    tokens: torch.Tensor


@dataclass(frozen=True)
class _Scorer:
    """GNMT score s(Y, X) = log P(Y|X) / lp(Y) + cp(X; Y) of finished hypotheses."""

    len_alpha: float
    cov_beta: float
    src_mask: torch.Tensor  # (B, S), True at real source positions

    def __call__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor, attn_sum: torch.Tensor
    ) -> torch.Tensor:
        """Score (B, N) hypotheses of lengths (B, N) with attention sums (B, N, S)."""
        coverage = coverage_penalty(attn_sum, self.src_mask.unsqueeze(1), self.cov_beta)
        return log_probs / length_penalty(lengths, self.len_alpha) + coverage


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick x[b, idx[b, k]] for x (B, N, ...) and idx (B, K) -> (B, K, ...)."""
    batch = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (B, 1)
    return x[batch, idx]


def _init_alive(
    batch: int, beam_size: int, shape: tuple[int, int], return_attn: bool, device: torch.device
) -> _Alive:
    """Start with K copies of the empty hypothesis, of which only the first is live.

    The other copies get log P = -inf so that the first step does not fill the beam
    with K duplicates of the same extensions.
    """
    max_steps, src_len = shape
    rows = batch * beam_size
    log_probs = torch.full((batch, beam_size), float("-inf"), device=device)  # (B, K)
    log_probs[:, 0] = 0.0
    attn = torch.zeros(rows, max_steps, src_len, device=device) if return_attn else None
    return _Alive(
        log_probs,
        torch.zeros(rows, max_steps, dtype=torch.long, device=device),
        torch.zeros(rows, src_len, device=device),
        attn,
    )


def _init_pool(
    batch: int, beam_size: int, shape: tuple[int, int], return_attn: bool, device: torch.device
) -> _Pool:
    """Create an empty pool of K finished slots per sentence."""
    max_steps, src_len = shape
    return _Pool(
        torch.full((batch, beam_size), float("-inf"), device=device),
        torch.zeros(batch, beam_size, max_steps, dtype=torch.long, device=device),
        torch.zeros(batch, beam_size, dtype=torch.long, device=device),
        torch.zeros(batch, beam_size, max_steps, src_len, device=device) if return_attn else None,
        torch.zeros(batch, dtype=torch.long, device=device),
    )


@dataclass(frozen=True)
class _Active:
    """The sentences still being searched (B' of the B inputs).

    Attributes:
        orig: (B',) index of each active sentence in the input batch.
        max_lens: (B',) their step limits.
        scorer: the GNMT scorer restricted to their source masks.
    """

    orig: torch.Tensor
    max_lens: torch.Tensor
    scorer: _Scorer


def _store(result: _Pool, pool: _Pool, orig: torch.Tensor, which: torch.Tensor) -> None:
    """Copy the pools of the sentences selected by `which` (B',) into `result` (B, ...)."""
    idx = orig[which]  # (n,)
    result.scores[idx] = pool.scores[which]
    result.tokens[idx] = pool.tokens[which]
    result.lengths[idx] = pool.lengths[which]
    result.count[idx] = pool.count[which]
    if result.attn is not None and pool.attn is not None:
        result.attn[idx] = pool.attn[which]


def _shrink(
    alive: _Alive,
    state: SearchState,
    prev: torch.Tensor,
    pool: _Pool,
    search: _Active,
    keep: torch.Tensor,
) -> tuple[_Alive, SearchState, torch.Tensor, _Pool, _Active]:
    """Drop the sentences where `keep` (B',) is False from every per-sentence buffer."""
    beam_size = alive.log_probs.shape[1]
    sentences = keep.nonzero().squeeze(1)  # (B'',)
    offsets = torch.arange(beam_size, device=keep.device)  # (K,)
    rows = (sentences.unsqueeze(1) * beam_size + offsets).view(-1)  # (B''*K,)
    attn = None if alive.attn is None else alive.attn[rows]
    alive = _Alive(alive.log_probs[sentences], alive.tokens[rows], alive.attn_sum[rows], attn)
    pool = _Pool(
        pool.scores[sentences],
        pool.tokens[sentences],
        pool.lengths[sentences],
        None if pool.attn is None else pool.attn[sentences],
        pool.count[sentences],
    )
    scorer = search.scorer
    search = _Active(
        search.orig[sentences],
        search.max_lens[sentences],
        _Scorer(scorer.len_alpha, scorer.cov_beta, scorer.src_mask[sentences]),
    )
    return alive, state.index_select(rows), prev[rows], pool, search
