"""binarize(): ids equal on-the-fly encoding, content-hash cache, spm_model_path naming."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from data_helpers import train_tokenizer, write_corpus, write_lines

import nmt.data.binarize as binarize_module
from nmt.data.binarize import binarize, ids_dtype, spm_model_path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), count=250)


@pytest.fixture(scope="module")
def tokenizer(corpus, tmp_path_factory):
    return train_tokenizer(list(corpus), tmp_path_factory.mktemp("spm") / "joint.model")


def read_side(corpus_dir, side):
    ids = np.load(corpus_dir.ids_path(side), mmap_mode="r")
    offsets = np.load(corpus_dir.offsets_path(side))
    return [ids[offsets[i] : offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


@pytest.mark.parametrize("num_workers", [1, 2])
def test_ids_equal_line_by_line_encoding(corpus, tokenizer, tmp_path, num_workers):
    result = binarize(
        *corpus, tokenizer, tokenizer, tmp_path, num_workers=num_workers, chunk_lines=40
    )
    for side, path in zip(("src", "tgt"), corpus, strict=True):
        lines = path.read_text(encoding="utf-8").splitlines()
        expected = [tokenizer.encode([line])[0] for line in lines]
        assert read_side(result, side) == expected
        assert np.load(result.ids_path(side)).dtype == np.uint16
    assert result.num_pairs == 250
    assert result.directory.parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [result.directory.name]  # no temp dirs left


def test_separate_tokenizers_and_empty_lines(tmp_path, corpus, tokenizer):
    src = write_lines(tmp_path / "a.de", ["das Haus", "", "der Mann"])
    tgt = write_lines(tmp_path / "a.en", ["", "the house", "the man"])
    other = train_tokenizer([corpus[1]], tmp_path / "en.model", vocab_size=40)
    result = binarize(src, tgt, tokenizer, other, tmp_path / "bin", num_workers=1)
    assert read_side(result, "src") == tokenizer.encode(["das Haus", "", "der Mann"])
    assert read_side(result, "tgt") == other.encode(["", "the house", "the man"])


def test_same_inputs_reuse_the_cache(corpus, tokenizer, tmp_path, monkeypatch):
    first = binarize(*corpus, tokenizer, tokenizer, tmp_path, num_workers=1)
    # Same contents under other names and with new mtimes hash the same.
    copies = [shutil.copy(path, tmp_path / f"copy{i}.txt") for i, path in enumerate(corpus)]

    def fail(*args, **kwargs):
        raise AssertionError("re-encoded a cached corpus")

    monkeypatch.setattr(binarize_module, "_encode_corpus", fail)
    assert binarize(*corpus, tokenizer, tokenizer, tmp_path) == first
    assert binarize(*copies, tokenizer, tokenizer, tmp_path) == first


def test_changes_give_a_new_hash(corpus, tokenizer, tmp_path, monkeypatch):
    base = binarize(*corpus, tokenizer, tokenizer, tmp_path, num_workers=1).directory
    edited = tmp_path / "edited.en"
    lines = corpus[1].read_text(encoding="utf-8").splitlines()
    write_lines(edited, [lines[0] + " big", *lines[1:]])
    other_tok = train_tokenizer(list(corpus), tmp_path / "other.model", vocab_size=50)
    changed = {
        binarize(corpus[0], edited, tokenizer, tokenizer, tmp_path, num_workers=1).directory,
        binarize(*corpus, tokenizer, other_tok, tmp_path, num_workers=1).directory,
    }
    monkeypatch.setattr(binarize_module, "FORMAT_VERSION", binarize_module.FORMAT_VERSION + 1)
    changed.add(binarize(*corpus, tokenizer, tokenizer, tmp_path, num_workers=1).directory)
    assert len(changed) == 3 and base not in changed


def test_bad_input_is_reported(tmp_path, tokenizer):
    src = write_lines(tmp_path / "a.de", ["eins", "zwei"])
    tgt = write_lines(tmp_path / "a.en", ["one"])
    with pytest.raises(ValueError, match="a.en"):
        binarize(src, tgt, tokenizer, tokenizer, tmp_path / "bin")
    with pytest.raises(ValueError, match="missing.en"):
        binarize(src, tmp_path / "missing.en", tokenizer, tokenizer, tmp_path / "bin")


def test_ids_dtype_fits_the_vocabulary():
    for vocab_size in (100, 65536, 65537, 200_000):
        dtype = ids_dtype(vocab_size)
        assert np.iinfo(dtype).max >= vocab_size - 1
    assert ids_dtype(65536) == np.uint16 and ids_dtype(65537) == np.int32


def test_spm_model_path_hashes_contents_and_settings(corpus, tmp_path):
    settings = {"vocab_size": 8000, "model_type": "unigram"}
    path = spm_model_path(tmp_path, settings, list(corpus))
    assert path.parent == tmp_path / "spm" and path.suffix == ".model"
    copies = [shutil.copy(p, tmp_path / f"c{i}") for i, p in enumerate(corpus)]
    assert spm_model_path(tmp_path, settings, copies) == path
    edited = write_lines(tmp_path / "e", ["x", *corpus[1].read_text().splitlines()])
    others = {
        spm_model_path(tmp_path, {**settings, "vocab_size": 4000}, list(corpus)),
        spm_model_path(tmp_path, settings, [corpus[0], edited]),
        spm_model_path(tmp_path, settings, [corpus[0]]),
        spm_model_path(tmp_path, settings, [corpus[1], corpus[0]]),
    }
    assert len(others) == 4 and path not in others
