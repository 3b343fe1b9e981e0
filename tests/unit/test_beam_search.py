"""Beam search with fake models (tests/unit/search_fakes.py).

Scripted cases are worked out by hand in the comments; pseudo-random cases are checked
against brute force, greedy search and one-sentence-at-a-time decoding.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from search_fakes import BOS, EOS, FakeModel, hash_model, pad_batch, scripted_model

from nmt.search import Hypotheses, beam_search, greedy_search
from nmt.search.beam import _finalize_mask
from nmt.search.beam_buffers import Candidates

A, B = 4, 5  # content tokens of the scripted cases
SRC = (6,)
# Case "length": K = 2. Step 1 keeps a (.5) and b (.3); eos (.2) is ranked 3rd, not finished.
# Step 2 extensions: aE .30, bb .27, aa .20, bE .03 -> aE finishes (|Y| = 2), alive bb, aa.
# Step 3 extensions: bbE .27, aaE .12, aaa .08 -> bbE and aaE finish (|Y| = 3): 3 finished >= K,
# so the search stops after 3 steps.
LENGTH_PROBS = {
    (SRC, ()): {A: 0.5, B: 0.3, EOS: 0.2},
    (SRC, (A,)): {EOS: 0.6, A: 0.4},
    (SRC, (B,)): {B: 0.9, EOS: 0.1},
    (SRC, (B, B)): {EOS: 1.0},
    (SRC, (A, A)): {EOS: 0.6, A: 0.4},
}


def _beam(model: FakeModel, sources: list[list[int]], **kw: object) -> Hypotheses:
    src, src_lengths = pad_batch(sources)
    args: dict = dict(beam_size=2, len_alpha=0.0, cov_beta=0.0, max_len_a=4.0, max_len_b=5)
    args.update(kw)
    return beam_search(model, src, src_lengths, bos_id=BOS, eos_id=EOS, **args)


def _tokens_and_scores(hyps: Hypotheses, sentence: int = 0) -> tuple[list, list]:
    cands = hyps.nbest[sentence]
    return [c.tokens for c in cands], [c.score for c in cands]


def test_length_normalisation_short_hypothesis_wins_without_alpha() -> None:
    model = scripted_model(7, LENGTH_PROBS)
    tokens, scores = _tokens_and_scores(_beam(model, [list(SRC)], nbest=2))
    # alpha = 0: aE = log .30 beats bbE = log .27 (aaE = log .12 is third, dropped).
    assert tokens == [[A], [B, B]]
    assert scores == pytest.approx([math.log(0.30), math.log(0.27)], rel=1e-6)
    assert model.steps == 3  # early exit, the limit is 4 * 1 + 5 = 9 steps


def test_length_normalisation_longer_hypothesis_wins_with_alpha() -> None:
    model = scripted_model(7, LENGTH_PROBS)
    tokens, scores = _tokens_and_scores(_beam(model, [list(SRC)], nbest=2, len_alpha=1.0))
    # alpha = 1: lp(2) = 7/6, lp(3) = 8/6.
    # bbE: log(.27) * 6/8 = -0.982 beats aE: log(.30) * 6/7 = -1.032.
    assert tokens == [[B, B], [A]]
    assert scores == pytest.approx([math.log(0.27) * 6 / 8, math.log(0.30) * 6 / 7], rel=1e-6)
    assert model.steps == 3


def test_length_limit_finalizes_alive_hypotheses() -> None:
    model = scripted_model(7, LENGTH_PROBS)
    hyps = _beam(model, [list(SRC)], nbest=2, len_alpha=1.0, max_len_a=0.0, max_len_b=2)
    # Limit 2 steps: at step 2 the two best extensions aE (.30) and bb (.27) both finish;
    # both have |Y| = 2 (eos counts as a predicted token), so lp = 7/6 for both.
    tokens, scores = _tokens_and_scores(hyps)
    assert tokens == [[A], [B, B]]
    assert scores == pytest.approx([math.log(0.30) * 6 / 7, math.log(0.27) * 6 / 7], rel=1e-6)
    assert model.steps == 2


# Case "coverage": source (4, 5), padded to 3 columns next to a 3-token sentence.
# Step 1: x .6, y .4, attention [.9, .1]; step 2: both end, x attends [.9, .1], y [.1, .9].
# Attention sums: xE [1.8, .2] -> cp = beta * (log 1 + log .2); yE [1.0, 1.0] -> cp = 0.
COV_SRC, OTHER_SRC = (4, 5), (6, 7, 8)
X, Y = 4, 5
COV_PROBS = {
    (COV_SRC, ()): {X: 0.6, Y: 0.4},
    (COV_SRC, (X,)): {EOS: 1.0},
    (COV_SRC, (Y,)): {EOS: 1.0},
    (OTHER_SRC, ()): {EOS: 1.0},  # a single possible hypothesis: the empty one
}
COV_ATTN = {
    (COV_SRC, ()): [0.9, 0.1],
    (COV_SRC, (X,)): [0.9, 0.1],
    (COV_SRC, (Y,)): [0.1, 0.9],
    (OTHER_SRC, ()): [0.2, 0.3, 0.5],
}


@pytest.mark.parametrize(
    ("beta", "tokens", "scores"),
    [
        (0.0, [[X], [Y]], [math.log(0.6), math.log(0.4)]),
        (1.0, [[Y], [X]], [math.log(0.4), math.log(0.6) + math.log(0.2)]),
        # x still wins while beta * log .2 > log(.4 / .6), i.e. beta < log 1.5 / log 5 = 0.252.
        (0.2, [[X], [Y]], [math.log(0.6) + 0.2 * math.log(0.2), math.log(0.4)]),
        (0.3, [[Y], [X]], [math.log(0.4), math.log(0.6) + 0.3 * math.log(0.2)]),
    ],
)
def test_coverage_penalty_changes_ranking(beta: float, tokens: list, scores: list) -> None:
    model = scripted_model(7, COV_PROBS, COV_ATTN)
    hyps = _beam(model, [list(COV_SRC), list(OTHER_SRC)], nbest=2, cov_beta=beta)
    got_tokens, got_scores = _tokens_and_scores(hyps, 0)
    assert got_tokens == tokens
    assert got_scores == pytest.approx(scores, rel=1e-5, abs=1e-6)
    # The other sentence has one possible hypothesis; its 3 real positions all count.
    other_tokens, other_scores = _tokens_and_scores(hyps, 1)
    assert other_tokens == [[]]
    expected = beta * (math.log(0.2) + math.log(0.3) + math.log(0.5))
    assert other_scores == pytest.approx([expected], rel=1e-5, abs=1e-6)


def _gnmt_score(model: FakeModel, source: list[int], steps: list[int], alpha: float, beta: float):
    """Score predicted tokens `steps` (eos included if emitted) straight from the fake."""
    log_p = 0.0
    coverage = [0.0] * len(source)
    for t, token in enumerate(steps):
        log_probs, attn = model.distribution(tuple(source), tuple(steps[:t]))
        log_p += log_probs[token]
        coverage = [c + a for c, a in zip(coverage, attn, strict=True)]
    penalty = beta * sum(math.log(min(c, 1.0)) for c in coverage)
    return log_p / ((5 + len(steps)) / 6) ** alpha + penalty


def _brute_force(model: FakeModel, source: list[int], max_len: int, alpha: float, beta: float):
    """Score every hypothesis of at most `max_len` steps; best first."""
    content = [t for t in range(model.vocab_size) if t != EOS]
    results = []
    for n in range(max_len + 1):
        for prefix in itertools.product(content, repeat=n):
            steps = list(prefix) + ([EOS] if n < max_len else [])  # truncated at the limit
            results.append((_gnmt_score(model, source, steps, alpha, beta), list(prefix)))
    return sorted(results, key=lambda r: -r[0])


@pytest.mark.parametrize(("alpha", "beta"), [(0.0, 0.0), (0.8, 0.5)])
def test_exhaustive_beam_equals_brute_force(alpha: float, beta: float) -> None:
    # V = 5 (4 non-eos tokens), 3 steps: at most 16 * 5 = 80 extensions per step, so a beam
    # of 80 keeps and finalizes every hypothesis; the pool must hold the 80 best of all 101.
    model = hash_model(5, seed=11)
    source = [4, 1, 4]
    hyps = _beam(
        model,
        [source],
        beam_size=80,
        nbest=80,
        len_alpha=alpha,
        cov_beta=beta,
        max_len_a=0.0,
        max_len_b=3,
    )
    expected = _brute_force(model, source, 3, alpha, beta)[:80]
    tokens, scores = _tokens_and_scores(hyps)
    assert tokens == [t for _, t in expected]
    assert scores == pytest.approx([s for s, _ in expected], rel=1e-4)


@pytest.mark.parametrize(("alpha", "beta"), [(0.0, 0.0), (0.6, 0.1), (2.0, 1.0)])
def test_beam_size_one_equals_greedy(alpha: float, beta: float) -> None:
    sources = [[4, 5, 6, 7, 8], [6], [5, 5, 4], [8, 7], [7, 7, 7, 7]]
    src, src_lengths = pad_batch(sources)
    limits = dict(bos_id=BOS, eos_id=EOS, max_len_a=1.0, max_len_b=2)
    greedy_model, beam_model = (
        hash_model(10, seed=5, eos_bias=1.5),
        hash_model(10, seed=5, eos_bias=1.5),
    )
    greedy = greedy_search(greedy_model, src, src_lengths, **limits)
    beam = beam_search(
        beam_model, src, src_lengths, beam_size=1, len_alpha=alpha, cov_beta=beta, **limits
    )
    assert beam.best_tokens() == greedy.best_tokens()
    assert beam_model.steps == greedy_model.steps
    assert len({len(t) for t in greedy.best_tokens()}) > 1, "mix lengths and truncations"


def test_batch_equals_one_sentence_at_a_time() -> None:
    model = hash_model(9, seed=2, eos_bias=1.0)
    sources = [[4, 5, 6, 7, 8], [6], [5, 5, 4], [8, 7]]
    kw = dict(beam_size=3, nbest=3, len_alpha=0.6, cov_beta=0.2, max_len_a=1.0, max_len_b=2)
    batched = _beam(model, sources, return_attn=True, **kw)
    for sentence, source in enumerate(sources):
        alone = _beam(model, [source], return_attn=True, **kw).nbest[0]
        together = batched.nbest[sentence]
        assert [c.tokens for c in together] == [c.tokens for c in alone]
        assert [c.score for c in together] == pytest.approx([c.score for c in alone], rel=1e-6)
        for got, ref in zip(together, alone, strict=True):
            torch.testing.assert_close(got.attn, ref.attn)


def test_nbest_sorted_distinct_and_scored_like_the_formula() -> None:
    model = hash_model(8, seed=7, eos_bias=0.5)
    sources = [[4, 5, 6], [7, 4]]
    alpha, beta, limits = 0.6, 0.3, [4, 3]  # floor(1 * |src| + 1)
    hyps = _beam(
        model,
        sources,
        beam_size=4,
        nbest=4,
        len_alpha=alpha,
        cov_beta=beta,
        max_len_a=1.0,
        max_len_b=1,
    )
    for source, limit, cands in zip(sources, limits, hyps.nbest, strict=True):
        tokens, scores = [c.tokens for c in cands], [c.score for c in cands]
        assert len(cands) == 4
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(t) for t in tokens}) == 4  # the first step does not duplicate
        # A hypothesis as long as the limit was truncated, any other one ended with eos.
        steps = [t if len(t) == limit else t + [EOS] for t in tokens]
        expected = [_gnmt_score(model, source, s, alpha, beta) for s in steps]
        assert scores == pytest.approx(expected, rel=1e-5)


def test_return_attn_matches_attention_along_each_path() -> None:
    model = hash_model(8, seed=4, eos_bias=0.5)
    sources = [[4, 5, 6, 7], [7, 4]]
    hyps = _beam(model, sources, beam_size=3, nbest=3, return_attn=True, max_len_a=1.0)
    for source, cands in zip(sources, hyps.nbest, strict=True):
        for cand in cands:
            rows = [
                model.distribution(tuple(source), tuple(cand.tokens[:t]))[1]
                for t in range(len(cand.tokens))
            ]
            expected = torch.tensor(rows, dtype=torch.float32).reshape(len(rows), len(source))
            torch.testing.assert_close(cand.attn, expected)
    assert _beam(model, sources).nbest[0][0].attn is None


def test_single_possible_hypothesis_is_found_and_nbest_shrinks() -> None:
    # Every step has one possible token: x, y, eos. The K - 1 other beam slots only ever
    # hold impossible (-inf) hypotheses, which must neither be returned nor count as finished.
    chain = {(SRC, ()): {X: 1.0}, (SRC, (X,)): {Y: 1.0}, (SRC, (X, Y)): {EOS: 1.0}}
    model = scripted_model(7, chain)
    hyps = _beam(model, [list(SRC)], beam_size=3, nbest=3, len_alpha=0.6)
    tokens, scores = _tokens_and_scores(hyps)
    assert tokens == [[X, Y]]
    assert scores == pytest.approx([0.0], abs=1e-6)


@pytest.mark.parametrize(
    ("at_max", "expected"),
    [
        (False, [False, True, False, False, False, False]),
        (True, [True, True, False, False, False, False]),
    ],
)
def test_finalize_mask_only_possible_top_k_candidates(at_max: bool, expected: list[bool]) -> None:
    # K = 3, six candidates sorted by log P: x, eos, eos (impossible), then a rank-3 eos that
    # falls outside the beam. Only rank < K, finite log P and eos (or the limit) may finish.
    inf = float("-inf")
    cand = Candidates(
        log_probs=torch.tensor([[-1.0, -2.0, inf, inf, inf, inf]]),
        parents=torch.tensor([[0, 1, 2, 0, 1, 2]]),
        tokens=torch.tensor([[X, EOS, EOS, Y, Y, Y]]),
    )
    cand_late_eos = Candidates(
        log_probs=torch.tensor([[-1.0, -2.0, -3.0, -4.0, inf, inf]]),
        parents=torch.tensor([[0, 1, 2, 0, 1, 2]]),
        tokens=torch.tensor([[X, EOS, X, EOS, Y, Y]]),
    )
    flags = dict(at_max=torch.tensor([at_max]), beam_size=3, eos_id=EOS)
    assert _finalize_mask(cand, **flags).tolist() == [expected]
    late = _finalize_mask(cand_late_eos, **flags).tolist()[0]
    assert late[3] is False  # eos ranked K-th or later never finishes
    assert late[:3] == [at_max, True, at_max]


def test_finished_sentences_leave_the_batch() -> None:
    # Without eos (bias -50) every hypothesis runs to its limit floor(1 * |src| + 1):
    # 2 steps for the one-token source, 5 for the four-token one. After step 2 only the
    # second sentence's K rows are decoded, and both results equal decoding each alone.
    sources = [[4], [5, 6, 7, 4]]
    src, src_lengths = pad_batch(sources)
    settings = dict(
        beam_size=3,
        len_alpha=0.6,
        cov_beta=0.2,
        bos_id=BOS,
        eos_id=EOS,
        max_len_a=1.0,
        max_len_b=1,
        nbest=3,
    )
    model = hash_model(8, seed=3, eos_bias=-50.0)
    batched = beam_search(model, src, src_lengths, **settings)
    assert model.rows == [6, 6, 3, 3, 3]
    for row, source in enumerate(sources):
        alone = beam_search(hash_model(8, seed=3, eos_bias=-50.0), *pad_batch([source]), **settings)
        assert _tokens_and_scores(alone) == _tokens_and_scores(Hypotheses([batched.nbest[row]]))
