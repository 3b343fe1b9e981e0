"""GNMT length normalisation and coverage penalty (Wu et al. 2016, sec. 7).

A finished hypothesis Y of source X is ranked by

    s(Y, X) = log P(Y|X) / lp(Y) + cp(X; Y)

with lp(Y) = ((5 + |Y|) / 6) ** alpha and cp(X; Y) = beta * sum_i log(min(sum_j p_ij, 1)),
where p_ij is the attention of target step j on source word i.
"""

from __future__ import annotations

import torch


def length_penalty(lengths: torch.Tensor, alpha: float) -> torch.Tensor:
    """Compute the GNMT length normaliser lp(Y) = ((5 + |Y|) / 6) ** alpha.

    log P(Y|X) is divided by this value, so alpha = 0 disables normalisation and
    larger alpha favours longer hypotheses.

    Args:
        lengths: (...) hypothesis lengths |Y| (integer or float tensor of any shape).
        alpha: exponent; 0 gives lp = 1.

    Returns:
        (...) float tensor of normalisers, >= 1 for alpha >= 0.
    """
    return ((5.0 + lengths.float()) / 6.0) ** alpha


def coverage_penalty(attn_sum: torch.Tensor, src_mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Compute the GNMT coverage penalty cp = beta * sum_i log(min(sum_j attn_ij, 1)).

    The inner sum over target steps j is already done by the caller (`attn_sum`); the
    outer sum runs over the real source positions i only (padding is excluded by
    `src_mask`). With this sign convention the penalty is <= 0 and is ADDED to
    log P / lp: source words that received less than one unit of attention in total
    lower the score.

    Departure from the paper: the capped coverage is clamped below at the smallest
    positive float, so a never-attended word gives a large finite penalty instead of
    -inf (which would also turn into NaN when beta = 0).

    Args:
        attn_sum: (..., S) attention summed over the target steps of each hypothesis.
        src_mask: (..., S) True at real source positions; broadcastable to `attn_sum`.
        beta: weight of the penalty; 0 disables it.

    Returns:
        (...) penalties, <= 0 for beta >= 0.
    """
    tiny = torch.finfo(attn_sum.dtype).tiny
    log_coverage = attn_sum.clamp(min=tiny, max=1.0).log()  # (..., S)
    log_coverage = log_coverage.masked_fill(~src_mask, 0.0)
    return beta * log_coverage.sum(dim=-1)
