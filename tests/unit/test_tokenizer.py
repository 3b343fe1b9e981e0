"""SpmTokenizer: training, special ids, round trips, user-defined symbols, serialization."""

from __future__ import annotations

import io

import pytest
import sentencepiece as spm
from data_helpers import SRC_WORDS, make_lines, train_tokenizer, write_corpus

from nmt.tokenizer import SpecialIds, SpmTokenizer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), count=300)


@pytest.fixture(scope="module")
def tokenizer(corpus, tmp_path_factory):
    return train_tokenizer(list(corpus), tmp_path_factory.mktemp("spm") / "joint.model")


def test_special_ids_are_fixed(tokenizer):
    assert tokenizer.special_ids == SpecialIds(pad=0, unk=1, bos=2, eos=3)
    # The model's own piece table agrees: SentencePiece's default special piece names.
    for piece, expected in [("<pad>", 0), ("<unk>", 1), ("<s>", 2), ("</s>", 3)]:
        assert tokenizer.piece_to_id(piece) == expected


def test_round_trip_and_no_bos_eos(tokenizer, corpus):
    lines = corpus[0].read_text(encoding="utf-8").splitlines()[:50]
    unseen = make_lines(SRC_WORDS, 20, seed=99)  # new sentences from the same words
    ids = tokenizer.encode(lines + unseen)
    assert tokenizer.decode(ids) == lines + unseen
    flat = {i for seq in ids for i in seq}
    assert not flat & {0, 2, 3}
    assert max(flat) < tokenizer.vocab_size


def test_decode_ignores_pad_bos_eos(tokenizer):
    ids = tokenizer.encode(["das Haus", "der Mann sah"])
    wrapped = [[2, *seq, 3, 0, 0] for seq in ids]
    assert tokenizer.decode(wrapped) == ["das Haus", "der Mann sah"]
    assert tokenizer.decode([]) == []


def test_encode_matches_sentencepiece(tokenizer):
    reference = spm.SentencePieceProcessor(model_proto=tokenizer.model_bytes)
    lines = ["die Frau ging über die Brücke", "", "Kind"]
    assert tokenizer.encode(lines) == [reference.encode(line) for line in lines]
    assert tokenizer.encode_as_pieces(lines) == [
        reference.encode(line, out_type=str) for line in lines
    ]


def test_user_defined_symbols_are_single_pieces(corpus, tmp_path):
    tags = ("<2en>", "<2de>")
    tok = SpmTokenizer.train(
        list(corpus), tmp_path / "m.model", vocab_size=70, user_defined_symbols=tags, num_threads=2
    )
    pieces = tok.encode_as_pieces(["<2en> das Haus", "der<2de>Mann"])
    assert "<2en>" in pieces[0] and "<2de>" in pieces[1]
    tag_id = tok.piece_to_id("<2en>")
    assert tag_id not in (0, 1, 2, 3)
    assert tag_id in tok.encode(["<2en> das Haus"])[0]
    with pytest.raises(ValueError, match="user_defined_symbols"):
        tok.piece_to_id("<2fr>")


def test_model_bytes_load_and_from_bytes(tokenizer, corpus, tmp_path):
    path = tmp_path / "sub" / "x.model"
    trained = train_tokenizer(list(corpus), path)
    assert path.read_bytes() == trained.model_bytes
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.model"]  # no temp files left
    lines = ["das schöne Haus", "der große Mann ging"]
    assert SpmTokenizer.load(path).encode(lines) == trained.encode(lines)
    restored = SpmTokenizer.from_bytes(tokenizer.model_bytes)
    assert restored.encode(lines) == tokenizer.encode(lines)
    assert restored.vocab_size == tokenizer.vocab_size


def test_small_corpus_gives_smaller_vocab(corpus, tmp_path):
    tok = SpmTokenizer.train([corpus[0]], tmp_path / "big.model", vocab_size=5000, num_threads=2)
    assert tok.vocab_size < 5000


def test_foreign_special_ids_rejected(corpus):
    proto = io.BytesIO()  # SentencePiece defaults: unk 0, bos 1, eos 2, no pad
    spm.SentencePieceTrainer.train(
        input=str(corpus[0]), model_writer=proto, vocab_size=40, minloglevel=2
    )
    with pytest.raises(ValueError, match="special ids"):
        SpmTokenizer.from_bytes(proto.getvalue())


def test_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="missing.txt"):
        SpmTokenizer.train([tmp_path / "missing.txt"], tmp_path / "m.model", vocab_size=10)
    with pytest.raises(ValueError, match="nope.model"):
        SpmTokenizer.load(tmp_path / "nope.model")
    with pytest.raises(ValueError, match="model_type"):
        SpmTokenizer.train([], tmp_path / "m.model", vocab_size=10, model_type="word2")
