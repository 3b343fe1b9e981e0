"""Weighted corpora: per-epoch counts by hand, temperature weights, the per-epoch draw."""

import numpy as np
import pytest

from nmt.data.mixing import (
    EpochDraw,
    corpus_shares,
    epoch_counts,
    largest_remainder,
    share_metrics,
    temperature_weights,
    write_combined,
)
from nmt.data.reader import tsv_sides
from nmt.data.sampler import TokenBudgetBatchSampler


def test_epoch_counts_by_hand():
    # N = 40 pairs; weights 3 and 1 give 3/4 and 1/4 of every epoch, whatever the sizes.
    assert epoch_counts([10, 30], [3, 1]) == [30, 10]
    assert epoch_counts([10, 30], [1, 1]) == [20, 20]
    assert epoch_counts([10, 30], [1, 3]) == [10, 30]  # weights equal to the sizes' shares
    assert epoch_counts([10, 30], [0.75, 0.25]) == [30, 10]  # only ratios matter
    # 10 * 1/3 = 3.33 and 10 * 2/3 = 6.67: floors 3 + 6, the unit left goes to .67.
    assert epoch_counts([5, 5], [1, 2]) == [3, 7]
    # 3 * 1/3 each: floors 0, the 3 units go to the (equal) remainders in order.
    assert epoch_counts([1, 1, 1], [1, 1, 1]) == [1, 1, 1]
    with pytest.raises(ValueError, match="do not fit"):
        epoch_counts([10, 30], [1])


def test_largest_remainder_keeps_the_total():
    quotas = np.array([0.5, 0.5, 0.5, 1.5])
    assert largest_remainder(quotas, 3).tolist() == [1, 1, 0, 1]
    rng = np.random.default_rng(3)
    for _ in range(20):
        raw = rng.random(5)
        total = int(rng.integers(0, 1000))
        rounded = largest_remainder(raw / raw.sum() * total, total)
        assert rounded.sum() == total
        assert np.all(np.abs(rounded - raw / raw.sum() * total) < 1)


def test_temperature_sampling_equals_the_formula():
    sizes = [900, 100, 7]
    for temperature in (0.5, 1.0, 2.0, 5.0):
        weights = np.array(temperature_weights(sizes, temperature))
        expected = np.array(sizes, dtype=float) ** (1 / temperature)  # p_i ~ n_i^(1/T)
        np.testing.assert_allclose(weights / weights.sum(), expected / expected.sum())
    # T=2 on (900, 100): sqrt 30 : 10 = 3 : 1 of 1000.
    assert epoch_counts([900, 100], temperature_weights([900, 100], 2.0)) == [750, 250]
    assert epoch_counts([900, 100], temperature_weights([900, 100], 1.0)) == [900, 100]
    flat = epoch_counts([900, 100], temperature_weights([900, 100], 1e6))
    assert flat[0] == pytest.approx(500, abs=1)
    assert epoch_counts([10, 0], temperature_weights([10, 0], 5.0)) == [10, 0]
    with pytest.raises(ValueError, match="data.temperature must be positive"):
        temperature_weights([1], 0.0)


def hand_example():
    """Corpora of 10 and 30 pairs, weights 3 and 1: 30 and 10 examples per epoch."""
    corpus_ids = np.array([0] * 10 + [1] * 30)
    # Corpus 1 has two widths, 15 pairs each: its 10 draws take 5 of each.
    widths = np.array([4] * 10 + [2] * 15 + [5] * 15)
    return corpus_ids, widths, epoch_counts([10, 30], [3, 1])


def test_draw_takes_whole_copies_then_distinct_examples():
    corpus_ids, widths, counts = hand_example()
    draw = EpochDraw(corpus_ids, widths, counts)
    seen = np.zeros(40, dtype=int)
    for epoch in range(3):
        picked = draw.positions(seed=1, epoch=epoch)
        times = np.bincount(picked, minlength=40)
        assert np.bincount(corpus_ids[picked]).tolist() == [30, 10]
        assert times[:10].tolist() == [3] * 10  # 30 of 10: three copies of each
        assert set(times[10:].tolist()) == {0, 1}  # 10 of 30: distinct pairs
        assert times[10:25].sum() == 5 and times[25:].sum() == 5  # stratified by width
        assert np.sort(widths[picked]).tolist() == draw.sorted_widths.tolist()
        seen += times
    # Drawn anew each epoch: 3 epochs of 5 per width class use each of its 15 pairs once.
    assert seen[10:].tolist() == [1] * 30
    assert draw.positions(1, 3).tolist() == draw.positions(1, 0).tolist()  # the cycle restarts
    assert draw.positions(1, 0).tolist() != draw.positions(2, 0).tolist()  # another seed


def corpus_of_batches(sampler, corpus_ids):
    return [corpus_ids[np.asarray(batch)] for batch in sampler]


def test_sampler_serves_each_corpus_its_count_every_epoch():
    corpus_ids, widths, counts = hand_example()
    args = (widths, 12)
    sampler = TokenBudgetBatchSampler(*args, seed=5, corpus_ids=corpus_ids, epoch_counts=counts)
    lengths, epochs = set(), []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        lengths.add(len(batches))
        assert len(batches) == len(sampler)
        served = np.concatenate([corpus_ids[np.asarray(b)] for b in batches])
        assert np.bincount(served).tolist() == [30, 10]
        assert all(max(widths[b]) * len(b) <= 12 for b in batches)
        epochs.append(batches)
    assert len(lengths) == 1 and epochs[0] != epochs[1]
    # Deterministic per (seed, epoch): a second sampler gives the same epoch 3.
    twin = TokenBudgetBatchSampler(*args, seed=5, corpus_ids=corpus_ids, epoch_counts=counts)
    twin.set_epoch(3)
    assert list(twin) == epochs[3]
    other = TokenBudgetBatchSampler(*args, seed=6, corpus_ids=corpus_ids, epoch_counts=counts)
    other.set_epoch(3)
    assert list(other) != epochs[3]


def test_sampler_resumes_and_shards_a_mixed_epoch():
    corpus_ids, widths, counts = hand_example()
    args = (widths, 12)
    kwargs = {"seed": 5, "corpus_ids": corpus_ids, "epoch_counts": counts}
    sampler = TokenBudgetBatchSampler(*args, **kwargs)
    sampler.set_epoch(2)
    whole = list(sampler)
    stopped = TokenBudgetBatchSampler(*args, **kwargs)
    stopped.set_epoch(2)
    iterator = iter(stopped)
    head = [next(iterator) for _ in range(3)]
    resumed = TokenBudgetBatchSampler(*args, **kwargs)
    resumed.load_state_dict(stopped.state_dict())
    assert head + list(resumed) == whole
    shards = [TokenBudgetBatchSampler(*args, **kwargs, num_replicas=2, rank=r) for r in (0, 1)]
    for shard in shards:
        shard.set_epoch(2)
    interleaved = [b for pair in zip(*map(list, shards), strict=True) for b in pair]
    assert interleaved[: len(whole)] == whole


def test_shares_and_metrics():
    shares = corpus_shares(["web", "bible"], [10, 30], [30, 10])
    assert [(s.name, s.pairs, s.per_epoch, s.share) for s in shares] == [
        ("web", 10, 30, 0.75),
        ("bible", 30, 10, 0.25),
    ]
    assert share_metrics(shares) == {
        "data/pairs/web": 10.0,
        "data/per_epoch/web": 30.0,
        "data/share/web": 0.75,
        "data/pairs/bible": 30.0,
        "data/per_epoch/bible": 10.0,
        "data/share/bible": 0.25,
    }


def test_write_combined_prefixes_and_keeps_order(tmp_path):
    for name, lines in (("a", ["1", "2"]), ("b", ["3"])):
        (tmp_path / f"{name}.src").write_text("".join(f"s{x}\n" for x in lines))
        (tmp_path / f"{name}.tgt").write_text("".join(f"t{x}\n" for x in lines))
    out = (tmp_path / "all.src", tmp_path / "all.tgt")
    parts = [
        (tmp_path / "a.src", tmp_path / "a.tgt", None),
        (tmp_path / "b.src", tmp_path / "b.tgt", "<2x>"),
    ]
    assert write_combined(parts, out) == [2, 1]
    assert out[0].read_text().splitlines() == ["s1", "s2", "<2x> s3"]
    assert out[1].read_text().splitlines() == ["t1", "t2", "t3"]


def test_write_combined_streams_tsv_columns_in_chunks(tmp_path):
    (tmp_path / "a.tsv").write_text("s1\tt1\ns2\tt2\ns3\tt3\n")
    (tmp_path / "b.src").write_text("s4\ns5\n")
    (tmp_path / "b.tgt").write_text("t4\nt5\n")
    out = (tmp_path / "all.src", tmp_path / "all.tgt")
    parts = [
        (*tsv_sides(tmp_path / "a.tsv"), "<2x>"),
        (tmp_path / "b.src", tmp_path / "b.tgt", None),
    ]
    for chunk_lines in (1, 2, 10):
        assert write_combined(parts, out, chunk_lines=chunk_lines) == [3, 2]
        assert out[0].read_text().splitlines() == ["<2x> s1", "<2x> s2", "<2x> s3", "s4", "s5"]
        assert out[1].read_text().splitlines() == ["t1", "t2", "t3", "t4", "t5"]
    assert write_combined(parts, out, max_lines=2, chunk_lines=1) == [2, 2]
    assert out[1].read_text().splitlines() == ["t1", "t2", "t4", "t5"]
    (tmp_path / "b.tgt").write_text("t4\nt5\nt6\n")
    with pytest.raises(ValueError, match="line counts differ: .*b.src has 2 lines, .*b.tgt has 3"):
        write_combined(parts, out, max_lines=2, chunk_lines=1)  # read to the end: counts checked
    assert out[1].read_text().splitlines() == ["t1", "t2", "t4", "t5"]  # left as it was
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_write_combined_rewrites_only_files_whose_content_changes(tmp_path):
    for side in ("src", "tgt"):
        (tmp_path / f"a.{side}").write_text(f"{side} 1\n{side} 2\n")
    out = (tmp_path / "all.src", tmp_path / "all.tgt")
    parts = [(tmp_path / "a.src", tmp_path / "a.tgt", None)]
    write_combined(parts, out)
    before = [path.stat().st_ino for path in out]
    assert write_combined(parts, out, chunk_lines=1) == [2]
    assert [path.stat().st_ino for path in out] == before  # same content: files untouched
    (tmp_path / "a.tgt").write_text("tgt 1\ntgt 3\n")
    write_combined(parts, out)
    after = [path.stat().st_ino for path in out]
    assert after[0] == before[0] and after[1] != before[1]
    assert out[1].read_text() == "tgt 1\ntgt 3\n"
