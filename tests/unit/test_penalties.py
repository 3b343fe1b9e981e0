"""GNMT penalties (Wu et al. 2016, sec. 7) against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from nmt.search.limits import max_target_lengths
from nmt.search.penalties import coverage_penalty, length_penalty


@pytest.mark.parametrize("alpha", [0.0, 0.2, 0.6, 1.0, 2.0])
def test_length_penalty_matches_formula(alpha: float) -> None:
    lengths = torch.tensor([0, 1, 2, 7, 31])
    expected = [((5 + n) / 6) ** alpha for n in [0, 1, 2, 7, 31]]
    assert length_penalty(lengths, alpha).tolist() == pytest.approx(expected, rel=1e-6)


def test_length_penalty_hand_values() -> None:
    # lp(1) = 1 for any alpha; lp(7) with alpha 1 = 12/6 = 2; lp(13) with alpha 0.5 = sqrt(3).
    assert length_penalty(torch.tensor([1]), 0.7).item() == pytest.approx(1.0)
    assert length_penalty(torch.tensor([7]), 1.0).item() == pytest.approx(2.0)
    assert length_penalty(torch.tensor([13]), 0.5).item() == pytest.approx(math.sqrt(3.0))


def test_length_penalty_keeps_shape() -> None:
    assert length_penalty(torch.ones(2, 3, dtype=torch.long), 0.6).shape == (2, 3)


def test_coverage_penalty_hand_values_with_padding() -> None:
    attn_sum = torch.tensor(
        [
            [0.5, 2.0, 0.25, 0.0],  # 4 real positions: log .5 + log 1 + log .25 + log(tiny)
            [0.5, 0.8, 0.0, 0.0],  # 2 real positions; the zeros are padding
            [1.0, 3.0, 1.5, 0.7],  # 3 real positions, all covered -> 0
        ]
    )
    src_mask = torch.tensor(
        [[True, True, True, True], [True, True, False, False], [True, True, True, False]]
    )
    beta = 0.2
    tiny = torch.finfo(torch.float32).tiny
    expected = [
        beta * (math.log(0.5) + 0.0 + math.log(0.25) + math.log(tiny)),
        beta * (math.log(0.5) + math.log(0.8)),
        0.0,
    ]
    got = coverage_penalty(attn_sum, src_mask, beta)
    assert got.tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert (got <= 0).all()


def test_coverage_penalty_zero_beta_is_zero_even_for_unattended_words() -> None:
    attn_sum = torch.tensor([[0.0, 0.3]])
    got = coverage_penalty(attn_sum, torch.tensor([[True, True]]), 0.0)
    assert got.tolist() == [0.0]


def test_coverage_penalty_broadcasts_mask_over_hypotheses() -> None:
    attn_sum = torch.tensor([[[0.5, 0.1], [1.0, 0.1]]])  # (B=1, N=2, S=2)
    src_mask = torch.tensor([[True, False]]).unsqueeze(1)  # (B, 1, S): position 1 is padding
    got = coverage_penalty(attn_sum, src_mask, 1.0)
    assert got.shape == (1, 2)
    assert got[0].tolist() == pytest.approx([math.log(0.5), 0.0], abs=1e-6)


def test_max_target_lengths() -> None:
    src_lengths = torch.tensor([0, 1, 3, 10])
    # floor(1.5 * n + 2), at least 1
    assert max_target_lengths(src_lengths, 1.5, 2).tolist() == [2, 3, 6, 17]
    assert max_target_lengths(src_lengths, 0.0, 0).tolist() == [1, 1, 1, 1]
    assert max_target_lengths(src_lengths, 0.5, -1).tolist() == [1, 1, 1, 4]
