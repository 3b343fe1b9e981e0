"""Cleaning (data.clean): copies and exact duplicates removed, counted, order kept."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from data_helpers import SRC_WORDS, TGT_WORDS, make_lines, train_tokenizer, write_lines

from nmt.data.binarize import binarize
from nmt.data.clean import COPY, DUPLICATE, clean_pairs, later_occurrences
from nmt.data.corpus import FilterReport
from nmt.data.data_config import CleanConfig, DataConfig
from nmt.data.datamodule import TranslationDataModule
from nmt.data.dataset import ParallelDataset

# Line: (source, target); the comment says what cleaning makes of it.
PAIRS = [
    ("der Mann", "the man"),  # 0
    ("die Frau", "the woman"),  # 1
    ("der Mann", "the man"),  # 2 duplicate of 0
    ("der Mann", "a man"),  # 3 same source, other target: kept
    ("Haus", "Haus"),  # 4 copy
    ("die Frau", "the woman"),  # 5 duplicate of 1
    ("Haus", "Haus"),  # 6 copy (and a duplicate of 4: counted as a copy)
    ("das Kind", "the child"),  # 7
    ("der Mann", "the man"),  # 8 duplicate of 0
    ("the man", "der Mann"),  # 9 the sides of 0 swapped: kept
    ("Mann der", "der Mann"),  # 10 same pieces in another order: kept
    ("the man", "the man"),  # 11 copy
]
NO_LIMITS = {"max_len": None, "max_len_ratio": None}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The pairs above as train files, a valid set, and joint and per-side tokenizers."""
    root = tmp_path_factory.mktemp("clean")
    src = write_lines(root / "train.de", [s for s, _ in PAIRS])
    tgt = write_lines(root / "train.en", [t for _, t in PAIRS])
    valid = (write_lines(root / "valid.de", ["der Mann"]), write_lines(root / "valid.en", ["x"]))
    spm_src = write_lines(root / "spm.de", make_lines(SRC_WORDS + TGT_WORDS, 300, seed=1))
    spm_tgt = write_lines(root / "spm.en", make_lines(TGT_WORDS + SRC_WORDS, 300, seed=2))
    joint = train_tokenizer([spm_src, spm_tgt], root / "joint.model")
    separate = (
        train_tokenizer([spm_src], root / "src.model", vocab_size=50),
        train_tokenizer([spm_tgt], root / "tgt.model", vocab_size=45),
    )
    return {"root": root, "train": (src, tgt), "valid": valid, "joint": joint, "separate": separate}


def dataset_of(corpus, tokenizers):
    binarized = binarize(*corpus["train"], *tokenizers, corpus["root"] / "bin", num_workers=1)
    return ParallelDataset.kept_by_width(binarized, None, None)


@pytest.mark.parametrize(
    ("settings", "kept", "removed"),
    [
        ((True, True), [0, 1, 3, 7, 9, 10], {COPY: 3, DUPLICATE: 3}),
        ((True, False), [0, 1, 3, 4, 7, 9, 10, 11], {DUPLICATE: 4}),
        ((False, True), [0, 1, 2, 3, 5, 7, 8, 9, 10], {COPY: 3}),
        ((False, False), list(range(len(PAIRS))), {}),
    ],
)
@pytest.mark.parametrize("models", ["joint", "separate"])
def test_counts_by_hand_order_kept(corpus, settings, kept, removed, models):
    tokenizers = (corpus["joint"],) * 2 if models == "joint" else corpus["separate"]
    dataset, report = dataset_of(corpus, tokenizers)
    assert report == FilterReport(total=12, kept=12, removed={})
    config = CleanConfig(duplicates=settings[0], copies=settings[1])
    cleaned, report = clean_pairs(dataset, report, config, tokenizers)
    # The first occurrence kept; the order (by width, ties by line) is the dataset's.
    order = {line: i for i, line in enumerate(dataset.line_numbers.tolist())}
    assert cleaned.line_numbers.tolist() == sorted(kept, key=order.__getitem__)
    assert report == FilterReport(total=12, kept=len(kept), removed=removed)
    for position, line in enumerate(cleaned.line_numbers.tolist()):  # each the pair of its line
        example = cleaned[position]
        assert example.index == line
        pair = (tokenizers[0].decode([example.src])[0], tokenizers[1].decode([example.tgt])[0])
        assert pair == PAIRS[line]
    widths = dict(zip(dataset.line_numbers.tolist(), dataset.widths.tolist(), strict=True))
    assert cleaned.widths.tolist() == [widths[line] for line in cleaned.line_numbers.tolist()]


def by_text(lines):
    """The rules on the texts (joint model: equal text <=> equal ids for these pairs)."""
    seen, kept = set(), []
    for line in lines:
        if PAIRS[line][0] != PAIRS[line][1] and PAIRS[line] not in seen:
            seen.add(PAIRS[line])
            kept.append(line)
    return kept


def test_cleaning_applies_to_the_pairs_left_by_length_filtering(corpus):
    tokenizers = (corpus["joint"],) * 2
    binarized = binarize(*corpus["train"], *tokenizers, corpus["root"] / "bin", num_workers=1)
    full = ParallelDataset(binarized)
    max_len = max(len(full[0].src), len(full[0].tgt)) - 1
    dataset, report = ParallelDataset.kept_by_width(binarized, max_len, None)
    assert not {0, 2, 8} & set(dataset.line_numbers.tolist())  # "der Mann"/"the man" too long
    filtered = dict(report.removed)
    cleaned, report = clean_pairs(dataset, report, CleanConfig(True, True), tokenizers)
    assert cleaned.line_numbers.tolist() == by_text(dataset.line_numbers.tolist())
    assert {k: v for k, v in report.removed.items() if k in filtered} == filtered
    assert report.total == 12 and report.kept == len(cleaned)
    assert sum(report.removed.values()) + report.kept == 12


def test_later_occurrences_keep_the_first_of_each_key():
    first = np.array([5, 1, 5, 5, 2, 1], dtype=np.uint64)
    second = np.array([7, 3, 7, 8, 0, 3], dtype=np.uint64)
    assert later_occurrences(first, second).tolist() == [False, False, True, False, False, True]


def test_datamodule_keys_change_the_dataset_and_report(corpus, caplog):
    def setup(clean):
        (src, tgt), (valid_src, valid_tgt) = corpus["train"], corpus["valid"]
        config = DataConfig(
            src,
            tgt,
            valid_src,
            valid_tgt,
            work_dir=corpus["root"] / "work",
            spm={"vocab_size": 40},
            clean=clean,
            **NO_LIMITS,
        )
        dm = TranslationDataModule(config, seed=3)
        dm.setup("fit")
        return dm

    with caplog.at_level(logging.INFO):
        on = setup({"duplicates": True, "copies": True})
    assert sorted(on.train_dataset.line_numbers.tolist()) == [0, 1, 3, 7, 9, 10]
    assert f"kept 6 of 12 pairs; removed: 3 {COPY}, 3 {DUPLICATE}" in caplog.text
    assert sorted(setup({}).train_dataset.line_numbers.tolist()) == list(range(12))  # default: off
    again = setup({"duplicates": True, "copies": True})  # deterministic: resume sees the same
    assert again.train_dataset.line_numbers.tolist() == on.train_dataset.line_numbers.tolist()
    assert len(on.valid_dataset) == 1  # the valid set is never cleaned
