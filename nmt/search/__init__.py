"""Decoding over a model's step function: greedy and GNMT beam search, penalties."""

from nmt.search.beam import beam_search
from nmt.search.greedy import greedy_search
from nmt.search.hypotheses import Hypotheses, Hypothesis
from nmt.search.limits import max_target_lengths
from nmt.search.penalties import coverage_penalty, length_penalty
from nmt.search.protocol import SearchState, StepModel

__all__ = [
    "Hypotheses",
    "Hypothesis",
    "SearchState",
    "StepModel",
    "beam_search",
    "coverage_penalty",
    "greedy_search",
    "length_penalty",
    "max_target_lengths",
]
