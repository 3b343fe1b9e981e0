"""Batched beam search with GNMT scoring (Wu et al. 2016, sec. 7).

All B sentences and their K beams are decoded together as B*K rows; sentence b owns
rows b*K .. b*K+K-1. Per step the work is a handful of tensor ops over (B, K*V)
candidates; the only Python loop runs over time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.search.hypotheses import Hypotheses, collect_hypotheses
from nmt.search.limits import max_target_lengths
from nmt.search.penalties import coverage_penalty, length_penalty
from nmt.search.protocol import SearchState, StepModel


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


def _check_args(beam_size: int, nbest: int, len_alpha: float, cov_beta: float) -> None:
    """Raise ValueError for out-of-range search settings."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be in [1, beam_size={beam_size}], got {nbest}")
    if len_alpha < 0:
        raise ValueError(f"len_alpha must be >= 0, got {len_alpha}")
    if cov_beta < 0:
        raise ValueError(f"cov_beta must be >= 0, got {cov_beta}")


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick x[b, idx[b, k]] for x (B, N, ...) and idx (B, K) -> (B, K, ...)."""
    batch = torch.arange(x.shape[0], device=x.device).unsqueeze(1)  # (B, 1)
    return x[batch, idx]


def _expand(state: SearchState, batch: int, beam_size: int, device: torch.device) -> SearchState:
    """Repeat each sentence's state K times: B rows -> B*K rows."""
    return state.index_select(torch.arange(batch, device=device).repeat_interleave(beam_size))


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


def _record_attn(alive: _Alive, attn: torch.Tensor, step: int) -> _Alive:
    """Add this step's attention (B*K, S) to every live hypothesis' sum and history."""
    if alive.attn is not None:
        alive.attn[:, step - 1] = attn
    return _Alive(alive.log_probs, alive.tokens, alive.attn_sum + attn, alive.attn)


def _top_candidates(alive: _Alive, log_probs: torch.Tensor, beam_size: int) -> _Candidates:
    """Keep the 2K most probable extensions of each sentence's K hypotheses.

    2K extensions always contain K that do not end in eos (each hypothesis has a single
    eos extension), so K hypotheses stay alive whatever finishes.
    """
    batch = alive.log_probs.shape[0]
    vocab = log_probs.shape[-1]
    total = alive.log_probs.unsqueeze(-1) + log_probs.view(batch, beam_size, vocab)  # (B, K, V)
    top, idx = total.view(batch, beam_size * vocab).topk(2 * beam_size, dim=1)  # (B, 2K)
    offsets = torch.arange(batch, device=idx.device).unsqueeze(1) * beam_size  # (B, 1)
    return _Candidates(top, idx // vocab + offsets, idx % vocab)


def _finalize_mask(
    cand: _Candidates, done: torch.Tensor, at_max: torch.Tensor, beam_size: int, eos_id: int
) -> torch.Tensor:
    """Select the candidates that finish now: (B, 2K) bool.

    Only the K best extensions may finish (an eos ranked lower is dropped, as in
    fairseq), they must be possible (finite log P), and their sentence must still be
    searching. At a sentence's length limit every one of its K best extensions finishes.
    """
    ends = (cand.tokens == eos_id) | at_max.unsqueeze(1)  # (B, 2K)
    in_beam = torch.arange(2 * beam_size, device=ends.device) < beam_size  # (2K,)
    return ends & in_beam & cand.log_probs.isfinite() & ~done.unsqueeze(1)


def _finalize(
    pool: _Pool,
    alive: _Alive,
    cand: _Candidates,
    finalize: torch.Tensor,
    step: int,
    scorer: _Scorer,
    eos_id: int,
) -> _Pool:
    """Score the finishing candidates and merge them into the pool, keeping the K best.

    |Y| counts every predicted token, eos included, and the coverage sums the
    hypothesis' own attention over all its steps.
    """
    beam_size = pool.scores.shape[1]
    is_eos = cand.tokens == eos_id  # (B, 2K)
    steps = torch.full_like(cand.log_probs, step)  # (B, 2K)
    scores = scorer(cand.log_probs, steps, alive.attn_sum[cand.parents])  # (B, 2K)
    scores = scores.masked_fill(~finalize, float("-inf"))
    tokens = alive.tokens[cand.parents]  # (B, 2K, T)
    tokens[..., step - 1] = cand.tokens
    lengths = step - is_eos.long()  # (B, 2K)
    best, keep = torch.cat([pool.scores, scores], dim=1).topk(beam_size, dim=1)  # (B, K)
    attn = None
    if pool.attn is not None and alive.attn is not None:
        attn = _rows(torch.cat([pool.attn, alive.attn[cand.parents]], dim=1), keep)
    return _Pool(
        best,
        _rows(torch.cat([pool.tokens, tokens], dim=1), keep),  # (B, K, T)
        _rows(torch.cat([pool.lengths, lengths], dim=1), keep),  # (B, K)
        attn,  # (B, K, T, S)
        pool.count + finalize.sum(dim=1),
    )


def _select(
    alive: _Alive, cand: _Candidates, state: SearchState, step: int, eos_id: int
) -> tuple[_Alive, SearchState, torch.Tensor]:
    """Keep the K most probable extensions that do not end in eos as the new beam.

    Returns:
        The new live hypotheses, the decoder state reordered by beam origin, and the
        (B*K,) tokens to feed at the next step.
    """
    beam_size = alive.log_probs.shape[1]
    open_log_probs = cand.log_probs.masked_fill(cand.tokens == eos_id, float("-inf"))
    log_probs, keep = open_log_probs.topk(beam_size, dim=1)  # (B, K)
    parents = cand.parents.gather(1, keep).view(-1)  # (B*K,)
    prev = cand.tokens.gather(1, keep).view(-1)  # (B*K,)
    tokens = alive.tokens[parents]  # (B*K, T)
    tokens[:, step - 1] = prev
    attn = None if alive.attn is None else alive.attn[parents]  # (B*K, T, S)
    new_alive = _Alive(log_probs, tokens, alive.attn_sum[parents], attn)
    return new_alive, state.reorder_beams(parents), prev


@torch.no_grad()
def beam_search(
    model: StepModel,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    beam_size: int,
    len_alpha: float,
    cov_beta: float,
    bos_id: int,
    eos_id: int,
    max_len_a: float,
    max_len_b: int,
    nbest: int = 1,
    return_attn: bool = False,
) -> Hypotheses:
    """Decode a batch with beam search and rank finished hypotheses by GNMT score.

    Live hypotheses are ranked by log P alone: they all have the same length at a given
    step, and the penalties enter only when a hypothesis finishes and moves to its
    sentence's pool with score log P / lp(Y) + cp(X; Y). A sentence is done once K
    hypotheses have finished (the simpler rule; a live hypothesis that could still
    overtake the pool under length normalisation is not waited for) or at its length
    limit, where its K best extensions are finalized as they are. The loop exits as
    soon as every sentence is done. Since the live ranking ignores the penalties,
    beam_size=1 follows exactly the greedy path whatever len_alpha and cov_beta.

    Args:
        model: object following the `StepModel` protocol, in eval mode.
        src: (B, S) padded source token ids.
        src_lengths: (B,) real source lengths.
        beam_size: K, live hypotheses kept per sentence.
        len_alpha: length normalisation exponent alpha (0 disables it).
        cov_beta: coverage penalty weight beta (0 disables it).
        bos_id: id fed at the first step.
        eos_id: id that ends a hypothesis (not included in the output tokens).
        max_len_a: slope of the length limit floor(a * |src| + b).
        max_len_b: intercept of the length limit.
        nbest: hypotheses returned per sentence, 1 <= nbest <= K.
        return_attn: also return each hypothesis' (len, S_i) attention.

    Returns:
        Up to `nbest` hypotheses per sentence, best GNMT score first.

    Raises:
        ValueError: for beam_size < 1, nbest outside [1, beam_size], negative
            len_alpha, cov_beta or max_len_a.
    """
    _check_args(beam_size, nbest, len_alpha, cov_beta)
    batch, src_len = src.shape
    device = src.device
    max_lens = max_target_lengths(src_lengths, max_len_a, max_len_b).to(device)  # (B,)
    shape = (int(max_lens.max()), src_len)
    src_mask = torch.arange(src_len, device=device) < src_lengths.to(device).unsqueeze(1)  # (B, S)
    scorer = _Scorer(len_alpha, cov_beta, src_mask)
    state = _expand(model.init_state(model.encode(src, src_lengths)), batch, beam_size, device)
    alive = _init_alive(batch, beam_size, shape, return_attn, device)
    pool = _init_pool(batch, beam_size, shape, return_attn, device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # (B,)
    prev = torch.full((batch * beam_size,), bos_id, dtype=torch.long, device=device)  # (B*K,)
    for step in range(1, shape[0] + 1):
        log_probs, attn, state = model.step(prev, state)  # (B*K, V), (B*K, S)
        alive = _record_attn(alive, attn.float(), step)
        cand = _top_candidates(alive, log_probs.float(), beam_size)
        at_max = max_lens <= step  # (B,)
        finalize = _finalize_mask(cand, done, at_max, beam_size, eos_id)
        if bool(finalize.any()):
            pool = _finalize(pool, alive, cand, finalize, step, scorer, eos_id)
        done = done | at_max | (pool.count >= beam_size)
        if bool(done.all()):
            break
        alive, state, prev = _select(alive, cand, state, step, eos_id)
    return collect_hypotheses(
        pool.tokens[:, :nbest],  # (B, nbest, T)
        pool.lengths[:, :nbest],
        pool.scores[:, :nbest],
        pool.scores[:, :nbest].isfinite(),
        src_lengths,
        None if pool.attn is None else pool.attn[:, :nbest],  # (B, nbest, T, S)
    )
