"""Greedy search with fake models (tests/unit/search_fakes.py)."""

from __future__ import annotations

import math

import pytest
import torch
from search_fakes import BOS, EOS, FakeModel, hash_model, pad_batch, scripted_model

from nmt.search.greedy import greedy_search

A, B = 4, 5
S1, S2 = (A, B), (6,)
PROBS = {
    (S1, ()): {A: 0.6, B: 0.4},
    (S1, (A,)): {B: 0.7, EOS: 0.3},
    (S1, (A, B)): {EOS: 0.9, A: 0.1},
    (S2, ()): {EOS: 0.5, A: 0.3, B: 0.2},
}
ATTN = {(S1, ()): [0.7, 0.3], (S1, (A,)): [0.2, 0.8], (S1, (A, B)): [0.5, 0.5]}


def _greedy(model: FakeModel, sources: list[list[int]], a: float = 2.0, b: int = 3, **kw):
    src, src_lengths = pad_batch(sources)
    return greedy_search(
        model, src, src_lengths, bos_id=BOS, eos_id=EOS, max_len_a=a, max_len_b=b, **kw
    )


def test_scripted_batch_tokens_scores_and_early_exit() -> None:
    model = scripted_model(8, PROBS, ATTN)
    hyps = _greedy(model, [list(S1), list(S2)])
    # S1: a (.6), b (.7), eos (.9); S2: eos (.5) right away.
    assert hyps.best_tokens() == [[A, B], []]
    assert hyps.nbest[0][0].score == pytest.approx(math.log(0.6 * 0.7 * 0.9), rel=1e-6)
    assert hyps.nbest[1][0].score == pytest.approx(math.log(0.5), rel=1e-6)
    # The longest sentence needs 3 steps although the limit is 2 * 2 + 3 = 7.
    assert model.steps == 3


def test_scripted_stops_at_first_step_when_all_emit_eos() -> None:
    model = scripted_model(8, PROBS)
    assert _greedy(model, [list(S2)]).best_tokens() == [[]]
    assert model.steps == 1


@pytest.mark.parametrize(
    ("max_len_b", "tokens", "prob"),
    [(2, [A, B], 0.6 * 0.7), (1, [A], 0.6), (0, [A], 0.6)],  # limit 0 is raised to 1 token
)
def test_length_limit_truncates_without_eos(max_len_b: int, tokens: list[int], prob: float) -> None:
    model = scripted_model(8, PROBS)
    hyps = _greedy(model, [list(S1)], a=0.0, b=max_len_b)
    assert hyps.best_tokens() == [tokens]
    assert hyps.nbest[0][0].score == pytest.approx(math.log(prob), rel=1e-6)
    assert model.steps == len(tokens)


def test_return_attn_rows_follow_output_tokens() -> None:
    hyps = _greedy(scripted_model(8, PROBS, ATTN), [list(S2), list(S1)], return_attn=True)
    # The eos step's attention is not a row: one row per output token, S_i columns.
    assert hyps.nbest[0][0].attn.shape == (0, 1)
    torch.testing.assert_close(hyps.nbest[1][0].attn, torch.tensor([[0.7, 0.3], [0.2, 0.8]]))
    assert _greedy(scripted_model(8, PROBS), [list(S1)]).nbest[0][0].attn is None


def _reference_greedy(model: FakeModel, source: list[int], limit: int) -> tuple[list[int], float]:
    """Follow the argmax of the fake's distribution directly, one sentence at a time."""
    prefix: list[int] = []
    total = 0.0
    for _ in range(limit):
        log_probs, _ = model.distribution(tuple(source), tuple(prefix))
        token = max(range(len(log_probs)), key=lambda t: log_probs[t])
        total += log_probs[token]
        if token == EOS:
            break
        prefix.append(token)
    return prefix, total


def test_hash_model_batch_matches_reference_per_sentence() -> None:
    model = hash_model(9, seed=3, eos_bias=1.0)
    sources = [[4, 5, 6, 7, 8], [6], [5, 5, 4], [8, 7]]
    hyps = _greedy(model, sources, a=1.0, b=1)
    for source, cands in zip(sources, hyps.nbest, strict=True):
        tokens, score = _reference_greedy(model, source, len(source) + 1)
        assert cands[0].tokens == tokens
        assert cands[0].score == pytest.approx(score, rel=1e-5)
    lengths = {len(c[0].tokens) for c in hyps.nbest}
    assert len(lengths) > 1, "the case should mix lengths to exercise per-sentence finishing"


def test_finished_sentences_leave_the_batch() -> None:
    model = hash_model(9, seed=3, eos_bias=1.0)
    sources = [[4, 5, 6, 7, 8], [6], [5, 5, 4], [8, 7]]
    hyps = _greedy(model, sources, a=1.0, b=1)
    decoded = []  # steps each sentence is decoded for: its tokens, plus the eos step if any
    for source, cands in zip(sources, hyps.nbest, strict=True):
        length, limit = len(cands[0].tokens), len(source) + 1
        decoded.append(length if length == limit else length + 1)
    assert model.rows == [sum(n > step for n in decoded) for step in range(max(decoded))]
    assert model.rows[-1] < len(sources)
