"""Greedy decoding: the most probable next token at every step."""

from __future__ import annotations

import torch

from nmt.search.hypotheses import Hypotheses, collect_hypotheses
from nmt.search.limits import max_target_lengths
from nmt.search.protocol import StepModel


@torch.no_grad()
def greedy_search(
    model: StepModel,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    *,
    bos_id: int,
    eos_id: int,
    max_len_a: float,
    max_len_b: int,
    return_attn: bool = False,
) -> Hypotheses:
    """Decode a batch greedily, stopping as soon as every sentence has finished.

    A sentence finishes when it emits eos or after floor(a * |src| + b) tokens
    (see `max_target_lengths`) and then leaves the batch: later steps decode only the
    rows still running. The model should be in eval mode.

    Args:
        model: object following the `StepModel` protocol.
        src: (B, S) padded source token ids.
        src_lengths: (B,) real source lengths.
        bos_id: id fed at the first step.
        eos_id: id that ends a hypothesis (not included in the output tokens).
        max_len_a: slope of the length limit.
        max_len_b: intercept of the length limit.
        return_attn: also return each hypothesis' (len, S_i) attention.

    Returns:
        One hypothesis per sentence; its score is log P(Y|X), eos included.
    """
    batch, src_len = src.shape
    max_lens = max_target_lengths(src_lengths, max_len_a, max_len_b).to(src.device)  # (B,)
    max_steps = int(max_lens.max())
    state = model.init_state(model.encode(src, src_lengths))
    tokens = src.new_full((batch, max_steps), eos_id)  # (B, T)
    out_lengths = src.new_zeros(batch)  # (B,)
    scores = torch.zeros(batch, device=src.device)  # (B,)
    attn_hist = torch.zeros(batch, max_steps, src_len, device=src.device) if return_attn else None
    rows = torch.arange(batch, device=src.device)  # (B',) the batch row of each decoded row
    prev = src.new_full((batch,), bos_id)  # (B',)
    for step in range(max_steps):
        log_probs, attn, state = model.step(prev, state)  # (B', V), (B', S)
        best, prev = log_probs.float().max(dim=-1)  # (B',), (B',)
        scores[rows] += best
        out_lengths[rows] += (prev != eos_id).long()
        tokens[rows, step] = prev
        if attn_hist is not None:
            attn_hist[rows, step] = attn.float()
        done = (prev == eos_id) | (step + 1 >= max_lens[rows])  # (B',)
        if bool(done.all()):
            break
        if bool(done.any()):
            # Finished sentences leave the batch: their rows are no longer decoded.
            keep = (~done).nonzero().squeeze(1)  # (B'',)
            rows, prev, state = rows[keep], prev[keep], state.index_select(keep)
    return collect_hypotheses(
        tokens.unsqueeze(1),  # (B, 1, T)
        out_lengths.unsqueeze(1),  # (B, 1)
        scores.unsqueeze(1),  # (B, 1)
        torch.ones(batch, 1, dtype=torch.bool),
        src_lengths,
        None if attn_hist is None else attn_hist.unsqueeze(1),  # (B, 1, T, S)
    )
