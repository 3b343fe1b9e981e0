"""EnsembleModel: the mean of the members' probabilities at each step, each member with its own
state, checked on scripted fakes by hand and against an ensemble-free reference model."""

from __future__ import annotations

import math

import pytest
import torch
from search_fakes import EOS, FakeModel, Prefix, Source, hash_model, pad_batch, scripted_model

from nmt.model.ensemble import EnsembleModel
from nmt.search import Hypotheses, beam_search, greedy_search

LIMITS = dict(bos_id=2, eos_id=EOS, max_len_a=1.0, max_len_b=4)
SOURCES = [[4, 5, 6], [7], [5, 8, 9, 4], [6, 6]]


def _greedy(model, sources: list[list[int]]) -> Hypotheses:
    src, lengths = pad_batch(sources)
    return greedy_search(model, src, lengths, return_attn=True, **LIMITS)


def _beam(model, sources: list[list[int]], **kw: object) -> Hypotheses:
    src, lengths = pad_batch(sources)
    options = dict(beam_size=3, len_alpha=0.6, cov_beta=0.2, nbest=3, return_attn=True)
    return beam_search(model, src, lengths, **{**LIMITS, **options, **kw})


def _assert_same(actual: Hypotheses, expected: Hypotheses, tol: float) -> None:
    assert len(actual.nbest) == len(expected.nbest)
    for got, want in zip(actual.nbest, expected.nbest, strict=True):
        assert [h.tokens for h in got] == [h.tokens for h in want]
        for h, w in zip(got, want, strict=True):
            assert h.score == pytest.approx(w.score, abs=tol, rel=0)
            torch.testing.assert_close(h.attn, w.attn, atol=tol, rtol=0)


def test_ensemble_of_one_is_the_model() -> None:
    model = hash_model(12, seed=5, eos_bias=1.0)
    alone = EnsembleModel([model])
    _assert_same(_greedy(alone, SOURCES), _greedy(model, SOURCES), tol=0.0)
    _assert_same(_beam(alone, SOURCES), _beam(model, SOURCES), tol=0.0)


def test_two_copies_of_a_model_are_the_model() -> None:
    model = hash_model(12, seed=5, eos_bias=1.0)
    pair = EnsembleModel(
        [hash_model(12, seed=5, eos_bias=1.0), hash_model(12, seed=5, eos_bias=1.0)]
    )
    _assert_same(_greedy(pair, SOURCES), _greedy(model, SOURCES), tol=1e-5)
    _assert_same(_beam(pair, SOURCES), _beam(model, SOURCES), tol=1e-5)


# Two scripted models over V = 7 (4, 5, 6 are words) for the source (4, 5). Token by token:
# step 1    A: 4 .9, 5 .1           B: 4 .01, 5 .3, 6 .69   -> mean 4 .455, 5 .2, 6 .345
# after 4   A: eos .5, 4 .5         B: eos .8, 5 .2         -> mean eos .65, 4 .25, 5 .1
# after 6   A: eos .9, 4 .1         B: eos 1                -> mean eos .95, 4 .05
# The mean of the log-probabilities would pick 5 first ((ln .1 + ln .3) / 2 > (ln .9 + ln .01) / 2
# and A cannot produce 6), so these tables tell the two definitions apart.
SOURCE = (4, 5)
TABLE_A = {(SOURCE, ()): {4: 0.9, 5: 0.1}, (SOURCE, (4,)): {EOS: 0.5, 4: 0.5}}
TABLE_A[(SOURCE, (6,))] = {EOS: 0.9, 4: 0.1}
TABLE_B = {(SOURCE, ()): {4: 0.01, 5: 0.3, 6: 0.69}, (SOURCE, (4,)): {EOS: 0.8, 5: 0.2}}
TABLE_B[(SOURCE, (6,))] = {EOS: 1.0}


def _scripted_pair() -> EnsembleModel:
    attn_a: dict[tuple[Source, Prefix], list[float]] = {(SOURCE, ()): [1.0, 0.0]}
    attn_b: dict[tuple[Source, Prefix], list[float]] = {(SOURCE, ()): [0.2, 0.8]}
    return EnsembleModel([scripted_model(7, TABLE_A, attn_a), scripted_model(7, TABLE_B, attn_b)])


def test_one_step_is_the_log_of_the_mean_probability_and_the_mean_attention() -> None:
    ensemble = _scripted_pair()
    src, lengths = pad_batch([list(SOURCE)])
    state = ensemble.init_state(ensemble.encode(src, lengths))
    log_probs, attn, _ = ensemble.step(torch.tensor([2]), state)
    expected = [0.0, 0.0, 0.0, 0.0, 0.455, 0.2, 0.345]
    torch.testing.assert_close(log_probs[0].exp(), torch.tensor(expected), atol=1e-6, rtol=0)
    torch.testing.assert_close(attn[0], torch.tensor([0.6, 0.4]))


def test_hand_checked_two_model_greedy_and_beam() -> None:
    greedy = _greedy(_scripted_pair(), [list(SOURCE)]).nbest[0]
    assert [h.tokens for h in greedy] == [[4]]
    assert greedy[0].score == pytest.approx(math.log(0.455) + math.log(0.65), abs=1e-5)
    # Beam 2 keeps 4 and 6 after step 1; both end at step 2 and 6's path is the more probable.
    beam = _beam(
        _scripted_pair(), [list(SOURCE)], beam_size=2, nbest=2, len_alpha=0.0, cov_beta=0.0
    )
    assert [h.tokens for h in beam.nbest[0]] == [[6], [4]]
    expected = [math.log(0.345 * 0.95), math.log(0.455 * 0.65)]
    assert [h.score for h in beam.nbest[0]] == pytest.approx(expected, abs=1e-5)


def _mean_model(vocab_size: int, members: list[FakeModel]) -> FakeModel:
    """One model whose distribution is the members' mean, computed per (source, prefix) in
    float64: no ensemble and no per-member state, so it cannot mix up members' rows."""

    def distribution(source: Source, prefix: Prefix) -> tuple[list[float], list[float]]:
        outputs = [member.distribution(source, prefix) for member in members]
        probs = [
            sum(math.exp(out[0][t]) for out in outputs) / len(outputs) for t in range(vocab_size)
        ]
        attn = [sum(out[1][s] for out in outputs) / len(outputs) for s in range(len(source))]
        return [math.log(p) for p in probs], attn

    return FakeModel(vocab_size, distribution)


def test_beam_reordering_keeps_every_members_state_consistent() -> None:
    # The members' next-token tables depend on each row's whole prefix, so a member whose
    # state rows were reordered (or dropped with finished sentences) differently from the
    # search's would score another prefix than the reference does.
    def members() -> list[FakeModel]:
        return [hash_model(10, seed=1, eos_bias=0.5), hash_model(10, seed=2, eos_bias=1.5)]

    reference = _mean_model(10, members())
    for beam_size in (2, 4):
        ensemble = _beam(EnsembleModel(members()), SOURCES, beam_size=beam_size, nbest=2)
        _assert_same(ensemble, _beam(reference, SOURCES, beam_size=beam_size, nbest=2), tol=1e-5)
    _assert_same(_greedy(EnsembleModel(members()), SOURCES), _greedy(reference, SOURCES), 1e-5)


def test_an_empty_ensemble_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one model"):
        EnsembleModel([])
