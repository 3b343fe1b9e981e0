"""Per-sentence bound on the number of decoding steps."""

from __future__ import annotations

import torch


def max_target_lengths(src_lengths: torch.Tensor, max_len_a: float, max_len_b: int) -> torch.Tensor:
    """Compute the maximum number of decoding steps floor(a * |src| + b), at least 1.

    A step predicts one token, eos included: a hypothesis that has not emitted eos
    after this many tokens is finalized as it is (truncated, without eos).

    Args:
        src_lengths: (B,) number of real source tokens per sentence.
        max_len_a: slope a, >= 0.
        max_len_b: intercept b.

    Returns:
        (B,) long tensor of step limits.
    """
    limits = torch.floor(max_len_a * src_lengths.double() + max_len_b).long()  # (B,)
    return limits.clamp(min=1)
