"""TokenBudgetBatchSampler: coverage, budget, shuffling, sharding, resume, padding."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from nmt.data.sampler import TokenBudgetBatchSampler

BUDGET = 300


@pytest.fixture(scope="module")
def lengths():
    rng = np.random.default_rng(0)
    src = np.clip(rng.lognormal(3.0, 0.6, size=2000), 1, 120).astype(np.int64)
    tgt = np.clip(src + rng.integers(-5, 6, size=2000), 0, 120)
    return src, tgt


def widths_of(src, tgt):
    return np.maximum(src, tgt + 1)


def make(lengths, max_tokens=BUDGET, **kwargs):
    args = {"seed": 1, **kwargs}
    return TokenBudgetBatchSampler(widths_of(*lengths), max_tokens, **args)


def padded_size(batch, src, tgt):
    """B * max(S, T + 1): the larger padded tensor, computed directly."""
    return len(batch) * max(int(src[batch].max()), int(tgt[batch].max()) + 1)


@pytest.mark.parametrize("shuffle", [True, False])
def test_every_example_once_and_within_budget(lengths, shuffle):
    sampler = make(lengths, shuffle=shuffle)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(len(lengths[0])))
    assert all(padded_size(b, *lengths) <= BUDGET for b in batches)


def test_oversized_example_gets_its_own_batch():
    src = np.array([5, 500, 6, 4, 7])
    tgt = np.array([5, 3, 6, 4, 7])
    batches = list(TokenBudgetBatchSampler(widths_of(src, tgt), 100, seed=0))
    assert [1] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]


def test_unshuffled_batches_are_length_sorted(lengths):
    src, tgt = lengths
    batches = list(make(lengths, shuffle=False))
    sizes = [np.maximum(src[b], tgt[b] + 1) for b in batches]
    flat = np.concatenate(sizes)
    assert (np.diff(flat) >= 0).all()
    assert batches == list(make(lengths, shuffle=False, seed=99))  # seed does not matter


def test_epochs_differ_and_are_reproducible(lengths):
    sampler = make(lengths)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0  # no set_epoch: same epoch again
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch1 != epoch0
    other = make(lengths)
    other.set_epoch(1)
    assert list(other) == epoch1
    assert list(make(lengths, seed=2)) != epoch0


def test_batch_count_is_the_same_every_epoch(lengths):
    sampler = make(lengths)
    counts = set()
    compositions = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        counts.add(len(batches))
        compositions.append(sorted(tuple(sorted(b)) for b in batches))
    assert counts == {len(sampler)}
    assert compositions[0] != compositions[1]  # equal-width examples are regrouped


def test_no_examples_no_batches():
    empty = np.zeros(0, dtype=np.int64)
    assert list(TokenBudgetBatchSampler(empty, 100, seed=0)) == []


def test_padding_stays_small(lengths):
    src, tgt = lengths
    batches = list(make(lengths, max_tokens=2000))
    slots = sum(padded_size(b, src, tgt) for b in batches)
    real = sum(int(np.maximum(src[b], tgt[b] + 1).sum()) for b in batches)
    assert 1 - real / slots < 0.10


@pytest.mark.parametrize("num_replicas", [2, 3, 4])
def test_ranks_share_the_single_rank_order(lengths, num_replicas):
    full = list(make(lengths))
    shards = [list(make(lengths, num_replicas=num_replicas, rank=r)) for r in range(num_replicas)]
    assert len({len(shard) for shard in shards}) == 1  # equal counts
    interleaved = [shard[k] for k in range(len(shards[0])) for shard in shards]
    padding = (-len(full)) % num_replicas
    assert interleaved == full + full[:padding]  # disjoint apart from the padding repeats
    assert len(shards[0]) == len(make(lengths, num_replicas=num_replicas))


def test_resume_yields_exactly_the_remaining_batches(lengths):
    sampler = make(lengths, num_replicas=2, rank=1)
    sampler.set_epoch(3)
    expected = list(sampler)
    iterator = iter(sampler)
    taken = [next(iterator) for _ in range(7)]
    state = sampler.state_dict()
    assert state == {"epoch": 3, "position": 7, "seed": 1}
    restored = make(lengths, num_replicas=2, rank=1, seed=123)
    restored.load_state_dict(state)
    restored.set_epoch(3)  # Lightning calls this at the start of the resumed epoch
    assert taken + list(restored) == expected
    restored.set_epoch(4)
    assert restored.position == 0 and len(list(restored)) == len(restored)


def test_a_pass_stopped_at_its_last_batch_still_completes_the_epoch(lengths):
    # Lightning's validation loop takes len(sampler) batches and never asks for one more, so
    # the generator is not exhausted; the next validation must still get every batch.
    sampler = make(lengths, shuffle=False)
    full = list(sampler)
    for _ in range(3):
        assert list(itertools.islice(iter(sampler), len(sampler))) == full


def test_invalid_settings(lengths):
    with pytest.raises(ValueError, match="rank"):
        make(lengths, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="batch_tokens"):
        make(lengths, max_tokens=0)


def cut_points_by_search(widths, max_tokens):
    """Independent statement: from each start, the longest run of sorted widths whose padded
    size (count * largest width) fits, at least one example."""
    bounds, start = [0], 0
    while start < len(widths):
        stop = start + 1
        while stop < len(widths) and (stop + 1 - start) * widths[stop] <= max_tokens:
            stop += 1
        bounds.append(stop)
        start = stop
    return bounds


@pytest.mark.parametrize("max_tokens", [1, 40, 300, 5000])
def test_unshuffled_batches_cut_where_a_direct_search_cuts(lengths, max_tokens):
    widths = np.sort(widths_of(*lengths))
    batches = list(TokenBudgetBatchSampler(widths, max_tokens, seed=0, shuffle=False))
    bounds = np.cumsum([0] + [len(b) for b in batches]).tolist()
    assert bounds == cut_points_by_search(widths.tolist(), max_tokens)
    assert [i for b in batches for i in b] == list(range(len(widths)))


def test_sorted_widths_need_no_order_and_batch_like_unsorted_ones(lengths):
    widths = widths_of(*lengths)
    ordered = np.sort(widths)
    for shuffle in (False, True):
        by_width = [sorted(ordered[b]) for b in make_widths(ordered, shuffle=shuffle)]
        unsorted = [sorted(widths[b]) for b in make_widths(widths, shuffle=shuffle)]
        assert sorted(by_width) == sorted(unsorted)  # the same batches of widths


def make_widths(widths, **kwargs):
    return list(TokenBudgetBatchSampler(widths, BUDGET, seed=1, **kwargs))


def test_an_epoch_over_sorted_widths_holds_no_per_example_memory():
    # 4M examples already ordered by width (ParallelDataset.kept_by_width): building the
    # sampler and serving a whole shuffled epoch allocates under a byte per example.
    rng = np.random.default_rng(0)
    widths = np.sort(rng.integers(2, 120, size=4_000_000).astype(np.uint16))
    tracemalloc.start()
    sampler = TokenBudgetBatchSampler(widths, 6000, seed=3)
    served = sum(len(batch) for batch in sampler)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert served == len(widths)
    assert peak < len(widths), peak  # an explicit order alone would be 4 bytes per example
