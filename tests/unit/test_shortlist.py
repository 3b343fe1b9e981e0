"""Lexical shortlist: Dice ranking by hand, chunked counting, vocabulary of a batch, and decoding
over a shortlist == the full model's distribution restricted and renormalised."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from nmt.data import shortlist as shortlist_module
from nmt.data.shortlist import Shortlist, build_shortlist
from nmt.model.config import Seq2SeqConfig
from nmt.model.output_subset import ShortlistModel
from nmt.model.quantize import quantize_int8
from nmt.model.seq2seq import build_model
from nmt.search.strategy import SearchConfig, run_search

# source ids 0..3, target ids 0..5
PAIRS = [
    ([0, 1], [0, 2]),
    ([0, 1, 1], [0, 2, 3]),
    ([0, 2], [0, 3]),
    ([3], [4]),
    ([0], [0, 5]),
]


def _pairs(pairs=PAIRS):
    return [(np.array(s), np.array(t)) for s, t in pairs]


def _dice_by_hand(pairs, s, t):
    n_s = sum(s in src for src, _ in pairs)
    n_t = sum(t in tgt for _, tgt in pairs)
    both = sum(s in src and t in tgt for src, tgt in pairs)
    return 2 * both / (n_s + n_t)


def test_candidates_are_ranked_by_dice_computed_by_hand():
    table = build_shortlist(_pairs(), 4, 6, per_source=3, frequent=2)
    for s in range(4):
        seen = {t for src, tgt in PAIRS if s in src for t in tgt}
        dice = {t: _dice_by_hand(PAIRS, s, t) for t in seen}
        row = [t for t in table.candidates[s].tolist() if t >= 0]
        assert set(row) <= seen
        assert len(row) == min(3, len(seen))
        scores = [dice[t] for t in row]
        assert scores == sorted(scores, reverse=True)
        # nothing left out scores higher than what was kept
        assert all(dice[t] <= min(scores) for t in seen - set(row))
    # source 1 occurs with targets {0, 2, 3}: dice 2*2/(2+4)=.67, 2*2/(2+2)=1, 2*1/(2+2)=.5
    assert table.candidates[1].tolist() == [2, 0, 3]
    # source 3 occurs once, with target 4 only; the row is padded with -1
    assert table.candidates[3].tolist() == [4, -1, -1]


def test_frequent_pieces_are_the_most_common_targets():
    table = build_shortlist(_pairs(), 4, 6, per_source=1, frequent=2)
    # target 0 in 4 sentences, 2 and 3 in 2 each (the stable sort keeps the smaller id)
    assert table.frequent.tolist() == [0, 2]
    assert build_shortlist(_pairs(), 4, 6, 1, frequent=10).frequent.tolist() == [0, 2, 3, 4, 5]


def test_chunked_counting_equals_one_chunk(monkeypatch):
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 30, rng.integers(1, 9)), rng.integers(0, 40, 5)) for _ in range(57)]
    whole = build_shortlist(pairs, 30, 40, per_source=6, frequent=5)
    monkeypatch.setattr(shortlist_module, "_CHUNK_PAIRS", 4)
    chunked = build_shortlist(pairs, 30, 40, per_source=6, frequent=5)
    assert torch.equal(whole.candidates, chunked.candidates)
    assert torch.equal(whole.frequent, chunked.frequent)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="data.shortlist.per_source"):
        build_shortlist(_pairs(), 4, 6, per_source=0, frequent=1)


def test_each_sentence_allows_its_own_candidates_frequent_and_always():
    table = Shortlist(
        torch.tensor([[5, 7], [8, -1], [9, 5]], dtype=torch.int32),
        torch.tensor([1, 4], dtype=torch.int32),
        tgt_vocab_size=12,
    )
    src = torch.tensor([[0, 1, 2], [1, 1, 0]])
    allowed = table.allowed(src, torch.tensor([3, 2]), always=(2, 3))
    assert allowed.nonzero()[allowed.nonzero()[:, 0] == 0, 1].tolist() == [1, 2, 3, 4, 5, 7, 8, 9]
    # the padding position (source id 0) of sentence 1 adds nothing
    assert allowed[1].nonzero().view(-1).tolist() == [1, 2, 3, 4, 8]
    restored = Shortlist.from_dict(table.to_dict())
    assert torch.equal(restored.candidates, table.candidates)
    assert restored.tgt_vocab_size == 12


def _model(quantized: bool):
    config = Seq2SeqConfig.from_dict(
        {
            "embed_dim": 8,
            "share_embeddings": False,
            "encoder": {"num_layers": 2, "hidden_size": 8, "dropout": 0.0},
            "decoder": {"num_layers": 2, "hidden_size": 8, "dropout": 0.0},
            "attention": {"hidden_size": 8},
        }
    )
    torch.manual_seed(0)
    model = build_model(config, 20, 30, pad_id=0).eval()
    return quantize_int8(model) if quantized else model


# source ids 0..19 -> target ids 0..29; sentence 0 allows {2,3,1} + {5,11,17}, sentence 1 + {29}
TABLE = Shortlist(
    torch.tensor(
        [[-1, -1]] * 4 + [[5, 11], [17, -1], [5, -1]] + [[29, -1]] * 13, dtype=torch.int32
    ),
    torch.tensor([], dtype=torch.int32),
    tgt_vocab_size=30,
)
SRC, LENGTHS = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
ALWAYS = (2, 3, 1)


@pytest.mark.parametrize("quantized", [False, True])
def test_step_is_the_full_distribution_restricted_and_renormalised_per_sentence(quantized):
    model = _model(quantized)
    short = ShortlistModel(model, TABLE.allowed(SRC, LENGTHS, ALWAYS), ALWAYS)
    assert short.vocab.tolist() == [2, 3, 1, 5, 11, 17, 29]
    allowed = [[2, 3, 1, 5, 11, 17], [2, 3, 1, 29]]
    with torch.no_grad():
        full_state = model.init_state(model.encode(SRC, LENGTHS))
        short_state = short.init_state(short.encode(SRC, LENGTHS))
        for full_prev in ([2, 2], [11, 29], [5, 3]):
            prev = torch.tensor(full_prev)
            full, full_attn, full_state = model.step(prev, full_state)
            positions = torch.tensor([short.vocab.tolist().index(t) for t in full_prev])
            mine, attn, short_state = short.step(positions, short_state)
            for row, ids in enumerate(allowed):
                expected = torch.log_softmax(full[row, ids], dim=-1)
                got = mine[row, [short.vocab.tolist().index(t) for t in ids]]
                # int8 too: the shortlist rows stay int8, so its logits are the full int8
                # layer's (a dequantised float copy of the rows differs by ~1e-3)
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
                assert mine[row].isfinite().sum() == len(ids)
            torch.testing.assert_close(attn, full_attn)
    assert short.to_vocab([0, 6, 3]) == [2, 29, 5]
    assert (short.position(2), short.position(3)) == (0, 1)


def test_mask_follows_rows_through_selection():
    short = ShortlistModel(_model(False), TABLE.allowed(SRC, LENGTHS, ALWAYS), ALWAYS)
    with torch.no_grad():
        state = short.init_state(short.encode(SRC, LENGTHS))
    moved = state.index_select(torch.tensor([1, 1, 0]))
    assert torch.equal(moved.bias, state.bias[[1, 1, 0]])
    assert torch.equal(state.reorder_beams(torch.tensor([0, 1])).bias, state.bias)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_search_over_a_shortlist_allowing_everything_equals_plain_search(beam_size):
    model = _model(False)
    src, lengths = torch.tensor([[4, 5, 6, 9], [7, 8, 0, 0]]), torch.tensor([4, 2])
    search = SearchConfig(beam_size=beam_size, max_len_a=0.0, max_len_b=6)
    plain = run_search(model, src, lengths, search, bos_id=2, eos_id=3, nbest=beam_size)
    everything = Shortlist(
        torch.full((20, 1), -1, dtype=torch.int32), torch.arange(30, dtype=torch.int32), 30
    )
    short = ShortlistModel(model, everything.allowed(src, lengths, (2, 3)), (2, 3))
    listed = run_search(short, src, lengths, search, bos_id=0, eos_id=1, nbest=beam_size)
    for mine, theirs in itertools.zip_longest(listed.nbest, plain.nbest):
        assert [short.to_vocab(h.tokens) for h in mine] == [h.tokens for h in theirs]
        assert [h.score for h in mine] == pytest.approx([h.score for h in theirs], abs=1e-5)


def test_search_output_stays_in_each_sentences_shortlist():
    model = _model(False)
    short = ShortlistModel(model, TABLE.allowed(SRC, LENGTHS, ALWAYS), ALWAYS)
    search = SearchConfig(beam_size=3, max_len_a=0.0, max_len_b=8)
    hyps = run_search(short, SRC, LENGTHS, search, bos_id=0, eos_id=1, nbest=3)
    allowed = [{2, 3, 1, 5, 11, 17}, {2, 3, 1, 29}]
    for ids, cands in zip(allowed, hyps.nbest, strict=True):
        assert cands
        for hyp in cands:
            assert set(short.to_vocab(hyp.tokens)) <= ids
