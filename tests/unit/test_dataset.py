"""ParallelDataset: access by positioned reads, length filtering with reported counts, widths."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from data_helpers import train_tokenizer, write_corpus, write_lines

from nmt.data import dataset as dataset_module
from nmt.data.binarize import binarize
from nmt.data.dataset import ParallelDataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    src, tgt = write_corpus(root, count=120, seed=3)
    tok = train_tokenizer([src, tgt], root / "spm.model")
    src_lines = src.read_text(encoding="utf-8").splitlines()
    tgt_lines = tgt.read_text(encoding="utf-8").splitlines()
    # Edge cases appended: empty sides, a very long side, a lopsided pair.
    src_lines += ["", "das Haus", " ".join(["Haus"] * 40), "der", "die Frau"]
    tgt_lines += ["the man", "", "the house", " ".join(["street"] * 10), "the woman"]
    write_lines(src, src_lines)
    write_lines(tgt, tgt_lines)
    corpus = binarize(src, tgt, tok, tok, root / "bin", num_workers=1)
    return corpus, tok, src_lines, tgt_lines


def test_items_and_lengths_match_encoding(setup):
    corpus, tok, src_lines, tgt_lines = setup
    dataset = ParallelDataset(corpus)
    src_ids, tgt_ids = tok.encode(src_lines), tok.encode(tgt_lines)
    assert len(dataset) == len(src_lines)
    for i in (0, 7, len(dataset) - 1):
        example = dataset[i]
        assert example.index == i
        assert example.src.tolist() == src_ids[i] and example.tgt.tolist() == tgt_ids[i]
    assert dataset.widths.tolist() == widths_of(src_ids, tgt_ids)
    assert dataset.line_numbers.tolist() == list(range(len(src_lines)))


def widths_of(src_ids, tgt_ids):
    """Padded widths computed directly: the longer of the source and the target + eos."""
    return [max(len(s), len(t) + 1) for s, t in zip(src_ids, tgt_ids, strict=True)]


def hand_filter(src_ids, tgt_ids, max_len, ratio):
    """Independent statement of the rules: empty side, then too long, then ratio."""
    kept, empty, long, lopsided = [], 0, 0, 0
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        ls, lt = len(s), len(t)
        if ls == 0 or lt == 0:
            empty += 1
        elif ls > max_len or lt > max_len:
            long += 1
        elif max(ls, lt) / min(ls, lt) > ratio:
            lopsided += 1
        else:
            kept.append(i)
    return kept, empty, long, lopsided


@pytest.mark.parametrize(("max_len", "ratio"), [(20, 3.0), (12, 1.5), (1000, 100.0)])
@pytest.mark.parametrize("block", [dataset_module._BLOCK, 16])  # 16: many blocks, a last short
def test_filter_counts_equal_hand_count(setup, max_len, ratio, block, monkeypatch):
    monkeypatch.setattr(dataset_module, "_BLOCK", block)
    corpus, tok, src_lines, tgt_lines = setup
    assert len(src_lines) % block not in (0, 8)  # the last block ends inside a byte of verdicts
    kept, empty, long, lopsided = hand_filter(
        tok.encode(src_lines), tok.encode(tgt_lines), max_len, ratio
    )
    dataset, report = ParallelDataset.kept_by_width(corpus, max_len, ratio)
    widths = widths_of(tok.encode(src_lines), tok.encode(tgt_lines))
    # The kept lines, ordered by width, ties in line order (the batch sampler's order).
    assert dataset.line_numbers.tolist() == sorted(kept, key=lambda line: (widths[line], line))
    assert dataset.widths.tolist() == sorted(widths[line] for line in kept)
    assert report.total == len(src_lines) and report.kept == len(kept)
    assert report.removed.get("empty side", 0) == empty == 2
    if max_len == 20:  # the appended edge cases hit every rule
        assert long >= 1 and lopsided >= 1
    assert report.removed.get(f"longer than {max_len}", 0) == long
    assert report.removed.get(f"length ratio above {ratio:g}", 0) == lopsided
    assert sum(report.removed.values()) == len(src_lines) - len(kept)
    first = dataset[0]
    assert first.index == int(dataset.line_numbers[0])
    assert first.src.tolist() == tok.encode([src_lines[first.index]])[0]
    assert dataset.first_lines(5).tolist() == kept[:5]  # file order again
    assert dataset.first_lines(10**6).tolist() == kept


def test_filter_without_limits_drops_only_empty(setup):
    corpus, _, src_lines, _ = setup
    dataset, report = ParallelDataset.kept_by_width(corpus, None, None)
    assert report.removed == {"empty side": 2}
    assert len(dataset) == len(src_lines) - 2


def test_pickle_reopens_files(setup):
    corpus = setup[0]
    dataset, _ = ParallelDataset.kept_by_width(corpus, 20, 3.0)
    clone = pickle.loads(pickle.dumps(dataset))
    assert len(pickle.dumps(dataset)) < 4 * dataset.line_numbers.nbytes + 2000
    for i in range(len(dataset)):
        assert clone[i].index == dataset[i].index
        assert np.array_equal(clone[i].src, dataset[i].src)
        assert np.array_equal(clone[i].tgt, dataset[i].tgt)


def test_widths_past_uint16_are_not_wrapped(setup, tmp_path):
    tok = setup[1]
    src_lines, tgt_lines = ["der Mann", " ".join(["Haus"] * 70_000)], ["the man", "the house"]
    src = write_lines(tmp_path / "train.de", src_lines)
    tgt = write_lines(tmp_path / "train.en", tgt_lines)
    corpus = binarize(src, tgt, tok, tok, tmp_path / "bin", num_workers=1)
    expected = widths_of(tok.encode(src_lines), tok.encode(tgt_lines))
    assert expected[1] > 2**16 > expected[0]
    assert ParallelDataset(corpus).widths.tolist() == expected
    kept, _ = ParallelDataset.kept_by_width(corpus, None, None)
    assert kept.widths.tolist() == expected and kept.line_numbers.tolist() == [0, 1]
