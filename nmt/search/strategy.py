"""SearchConfig and run_search: greedy when beam 1, beam search otherwise.

`SearchConfig` is the typed `search` config group and the one place its values are checked;
the search functions trust the values it passes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.search.beam import beam_search
from nmt.search.greedy import greedy_search
from nmt.search.hypotheses import Hypotheses
from nmt.search.protocol import StepModel


@dataclass
class SearchConfig:
    """Beam size and GNMT scoring (Wu et al. 2016, sec. 7); beam_size 1 is greedy search.

    The output length is capped at max_len_a * |src| + max_len_b tokens.
    """

    beam_size: int = 5
    len_alpha: float = 0.6
    cov_beta: float = 0.1
    max_len_a: float = 1.5
    max_len_b: int = 10

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"search.beam_size must be >= 1, got {self.beam_size}")
        if self.len_alpha < 0:
            raise ValueError(f"search.len_alpha must be >= 0, got {self.len_alpha}")
        if self.cov_beta < 0:
            raise ValueError(f"search.cov_beta must be >= 0, got {self.cov_beta}")
        if self.max_len_a < 0 or self.max_len_b < 0 or self.max_len_a + self.max_len_b <= 0:
            raise ValueError(
                f"search.max_len_a/max_len_b must be >= 0 and allow at least one token, got "
                f"{self.max_len_a}/{self.max_len_b}"
            )


def run_search(
    model: StepModel,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    search: SearchConfig,
    *,
    bos_id: int,
    eos_id: int,
    nbest: int = 1,
    return_attn: bool = False,
) -> Hypotheses:
    """Decode a batch as `search` says: greedy when beam_size is 1, GNMT beam search otherwise."""
    limits = dict(
        bos_id=bos_id,
        eos_id=eos_id,
        max_len_a=search.max_len_a,
        max_len_b=search.max_len_b,
        return_attn=return_attn,
    )
    if search.beam_size == 1:
        return greedy_search(model, src, src_lengths, **limits)
    return beam_search(
        model,
        src,
        src_lengths,
        beam_size=search.beam_size,
        len_alpha=search.len_alpha,
        cov_beta=search.cov_beta,
        nbest=nbest,
        **limits,
    )
