"""Batched beam search with GNMT scoring (Wu et al. 2016, sec. 7).

All B sentences and their K beams are decoded together as B*K rows; sentence b owns
rows b*K .. b*K+K-1. Per step the work is a handful of tensor ops over (B, K*V)
candidates; the only Python loop runs over time steps.
"""

from __future__ import annotations

import torch

from nmt.search.beam_buffers import Active, Alive, Candidates, Pool, Scorer, sentence_rows
from nmt.search.hypotheses import Hypotheses, collect_hypotheses
from nmt.search.limits import max_target_lengths
from nmt.search.protocol import SearchState, StepModel


def _expand(state: SearchState, batch: int, beam_size: int, device: torch.device) -> SearchState:
    """Repeat each sentence's state K times: B rows -> B*K rows."""
    return state.index_select(torch.arange(batch, device=device).repeat_interleave(beam_size))


def _top_candidates(alive: Alive, log_probs: torch.Tensor, beam_size: int) -> Candidates:
    """Keep the 2K most probable extensions of each sentence's K hypotheses.

    2K extensions always contain K that do not end in eos (each hypothesis has a single
    eos extension), so K hypotheses stay alive whatever finishes.
    """
    batch = alive.log_probs.shape[0]
    vocab = log_probs.shape[-1]
    total = alive.log_probs.unsqueeze(-1) + log_probs.view(batch, beam_size, vocab)  # (B, K, V)
    top, idx = total.view(batch, beam_size * vocab).topk(2 * beam_size, dim=1)  # (B, 2K)
    offsets = torch.arange(batch, device=idx.device).unsqueeze(1) * beam_size  # (B, 1)
    return Candidates(top, idx // vocab + offsets, idx % vocab)


def _finalize_mask(
    cand: Candidates, at_max: torch.Tensor, beam_size: int, eos_id: int
) -> torch.Tensor:
    """Select the candidates that finish now: (B, 2K) bool.

    Only the K best extensions may finish (an eos ranked lower is dropped, as in
    fairseq) and they must be possible (finite log P); every sentence here is still
    searching. At a sentence's length limit every one of its K best extensions finishes.
    """
    ends = (cand.tokens == eos_id) | at_max.unsqueeze(1)  # (B, 2K)
    in_beam = torch.arange(2 * beam_size, device=ends.device) < beam_size  # (2K,)
    return ends & in_beam & cand.log_probs.isfinite()


def _finalize(
    pool: Pool,
    alive: Alive,
    cand: Candidates,
    finalize: torch.Tensor,
    step: int,
    scorer: Scorer,
    eos_id: int,
) -> Pool:
    """Score the finishing candidates and merge them into the pool, keeping the K best.

    |Y| counts every predicted token, eos included, and the coverage sums the
    hypothesis' own attention over all its steps.
    """
    is_eos = cand.tokens == eos_id  # (B, 2K)
    steps = torch.full_like(cand.log_probs, step)  # (B, 2K)
    scores = scorer(cand.log_probs, steps, alive.attn_sum[cand.parents])  # (B, 2K)
    scores = scores.masked_fill(~finalize, float("-inf"))
    tokens = alive.tokens[cand.parents]  # (B, 2K, T)
    tokens[..., step - 1] = cand.tokens
    lengths = step - is_eos.long()  # (B, 2K)
    attn = None if alive.attn is None else alive.attn[cand.parents]  # (B, 2K, T, S)
    return pool.merge(Pool(scores, tokens, lengths, attn, finalize.sum(dim=1)))


def _select(
    alive: Alive, cand: Candidates, state: SearchState, step: int, eos_id: int
) -> tuple[Alive, SearchState, torch.Tensor]:
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
    new_alive = Alive(log_probs, tokens, alive.attn_sum[parents], attn)
    return new_alive, state.reorder_beams(parents), prev


def _shrink(
    keep: torch.Tensor,
    alive: Alive,
    state: SearchState,
    prev: torch.Tensor,
    pool: Pool,
    search: Active,
) -> tuple[Alive, SearchState, torch.Tensor, Pool, Active]:
    """Drop the sentences where `keep` (B',) is False from every per-sentence buffer."""
    sentences = keep.nonzero().squeeze(1)  # (B'',)
    rows = sentence_rows(sentences, alive.log_probs.shape[1])  # (B''*K,)
    return (
        alive.select(rows),
        state.index_select(rows),
        prev[rows],
        pool.select(sentences),
        search.select(sentences),
    )


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
    """
    batch, src_len = src.shape
    device = src.device
    max_lens = max_target_lengths(src_lengths, max_len_a, max_len_b).to(device)  # (B,)
    shape = (int(max_lens.max()), src_len)
    src_mask = torch.arange(src_len, device=device) < src_lengths.to(device).unsqueeze(1)  # (B, S)
    scorer = Scorer(len_alpha, cov_beta, src_mask)
    state = _expand(model.init_state(model.encode(src, src_lengths)), batch, beam_size, device)
    alive = Alive.start(batch, beam_size, shape, return_attn, device)
    pool = Pool.empty(batch, beam_size, shape, return_attn, device)
    result = Pool.empty(batch, beam_size, shape, return_attn, device)
    search = Active(torch.arange(batch, device=device), max_lens, scorer)
    prev = torch.full((batch * beam_size,), bos_id, dtype=torch.long, device=device)  # (B*K,)
    for step in range(1, shape[0] + 1):
        log_probs, attn, state = model.step(prev, state)  # (B'*K, V), (B'*K, S)
        alive = alive.record_attn(attn.float(), step)
        cand = _top_candidates(alive, log_probs.float(), beam_size)
        at_max = search.max_lens <= step  # (B',)
        finalize = _finalize_mask(cand, at_max, beam_size, eos_id)
        if bool(finalize.any()):
            pool = _finalize(pool, alive, cand, finalize, step, search.scorer, eos_id)
        done = at_max | (pool.count >= beam_size)  # (B',)
        if bool(done.all()):
            break
        alive, state, prev = _select(alive, cand, state, step, eos_id)
        if bool(done.any()):
            # Finished sentences leave the batch: their rows are no longer decoded.
            result.put(search.orig[done], pool.select(done))
            alive, state, prev, pool, search = _shrink(~done, alive, state, prev, pool, search)
    result.put(search.orig, pool)
    return collect_hypotheses(
        result.tokens[:, :nbest],  # (B, nbest, T)
        result.lengths[:, :nbest],
        result.scores[:, :nbest],
        result.scores[:, :nbest].isfinite(),
        src_lengths,
        None if result.attn is None else result.attn[:, :nbest],  # (B, nbest, T, S)
    )
