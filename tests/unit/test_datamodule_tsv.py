"""TSV corpora through the DataModule (data.train_tsv, data.valid_tsv, data.corpora[i].tsv)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from data_helpers import write_corpus
from sentencepiece import sentencepiece_model_pb2

from nmt.data.binarize import SIDES
from nmt.data.data_config import DataConfig
from nmt.data.datamodule import TranslationDataModule

SPM = {"joint": True, "vocab_size": 60}


@pytest.fixture
def files(tmp_path):
    """Train/valid pairs as two files each and as one TSV file each (the same lines)."""
    out = {"work": tmp_path / "work"}
    for split, count, seed in (("train", 300, 5), ("valid", 40, 50)):
        src, tgt = write_corpus(tmp_path / "text", count=count, seed=seed, name=split)
        out[split] = (src, tgt)
        out[f"{split}_tsv"] = write_tsv(tmp_path / f"{split}.tsv", src, tgt)
    return out


def write_tsv(path: Path, src: Path, tgt: Path) -> Path:
    rows = zip(
        src.read_text("utf-8").splitlines(), tgt.read_text("utf-8").splitlines(), strict=True
    )
    path.write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    return path


def ready(work: Path, **data) -> TranslationDataModule:
    values = dict.fromkeys(("train_src", "train_tgt", "valid_src", "valid_tgt"))
    values |= {"work_dir": work, "spm": SPM, "max_len": 15, "max_len_ratio": 2.0, **data}
    dm = TranslationDataModule(DataConfig(**values), seed=7)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def two_files(files, work=None) -> TranslationDataModule:
    (train_src, train_tgt), (valid_src, valid_tgt) = files["train"], files["valid"]
    return ready(
        work or files["work"] / "files",
        train_src=train_src,
        train_tgt=train_tgt,
        valid_src=valid_src,
        valid_tgt=valid_tgt,
    )


def model_content(tokenizer) -> bytes:
    """The serialized model without the input file names SentencePiece records."""
    proto = sentencepiece_model_pb2.ModelProto.FromString(tokenizer.model_bytes)
    proto.trainer_spec.ClearField("input")
    proto.trainer_spec.ClearField("model_prefix")
    return proto.SerializeToString()


def arrays(corpus) -> list[np.ndarray]:
    return [
        np.load(path(side)) for side in SIDES for path in (corpus.ids_path, corpus.offsets_path)
    ]


def examples(dataset) -> list[tuple]:
    return [
        (e.index, e.src.tolist(), e.tgt.tolist())
        for e in map(dataset.__getitem__, range(len(dataset)))
    ]


def assert_same_data(a: TranslationDataModule, b: TranslationDataModule) -> None:
    assert model_content(a.src_tokenizer) == model_content(b.src_tokenizer)
    built = [dm._build()[1] for dm in (a, b)]  # the cached corpora, nothing re-encoded
    corpora = [[*c["train"], c["valid"]] for c in built]
    for x_corpus, y_corpus in zip(*corpora, strict=True):
        for x, y in zip(arrays(x_corpus), arrays(y_corpus), strict=True):
            assert x.dtype == y.dtype and np.array_equal(x, y)
    assert examples(a.train_dataset) == examples(b.train_dataset)
    assert len(a.train_dataset) > 0
    assert (a.valid_src_lines, a.valid_refs) == (b.valid_src_lines, b.valid_refs)


def test_tsv_gives_the_model_arrays_and_examples_of_two_files(files):
    plain = two_files(files)
    tsv = ready(
        files["work"] / "tsv", train_tsv=str(files["train_tsv"]), valid_tsv=str(files["valid_tsv"])
    )
    assert_same_data(tsv, plain)
    assert tsv.valid_refs == files["valid"][1].read_text("utf-8").splitlines()
    assert tsv.valid_src_lines == files["valid"][0].read_text("utf-8").splitlines()
    assert [str(side) for side in tsv.train_sides[0]] == [
        f"{files['train_tsv']} (column 1)",
        f"{files['train_tsv']} (column 2)",
    ]
    assert not list((files["work"] / "tsv" / "spm").glob("*.input*.txt"))


def test_compressed_tsv_reads_like_the_plain_one(files, tmp_path):
    packed = tmp_path / "train.tsv.gz"
    packed.write_bytes(gzip.compress(files["train_tsv"].read_bytes()))
    valid = files["valid"]
    dm = ready(files["work"] / "gz", train_tsv=str(packed), valid_src=valid[0], valid_tgt=valid[1])
    assert_same_data(dm, two_files(files))


@pytest.mark.parametrize("row", ["only one column", "a\tb\tc"])
def test_a_tsv_line_without_two_columns_names_file_and_line(files, row):
    lines = files["train_tsv"].read_text("utf-8").splitlines()
    lines[6] = row
    files["train_tsv"].write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    valid = files["valid"]
    with pytest.raises(ValueError) as err:
        ready(
            files["work"], train_tsv=str(files["train_tsv"]), valid_src=valid[0], valid_tgt=valid[1]
        )
    columns = row.count("\t") + 1
    assert str(err.value) == (
        f"{files['train_tsv']}: line 7: {columns} tab-separated column(s), expected 2 "
        "(source TAB target)"
    )


def test_invalid_utf8_in_a_tsv_file_is_cleaned_once_for_both_columns(files):
    data = files["train_tsv"].read_bytes().replace(b"Haus", b"H\xe4us", 1)
    files["train_tsv"].write_bytes(data)
    valid = files["valid"]
    dm = ready(
        files["work"],
        train_tsv=str(files["train_tsv"]),
        valid_src=valid[0],
        valid_tgt=valid[1],
        on_invalid_utf8="replace",
    )
    src, tgt = dm._checked_sides()["train"][0]
    assert src.path == tgt.path != files["train_tsv"]
    assert (src.column, tgt.column) == (0, 1)
    assert "H\ufffdus" in src.path.read_text("utf-8")
    assert list((files["work"] / "utf8").iterdir()) == [src.path]


def test_corpora_take_tsv_and_valid_tsv(files, tmp_path):
    """A mixture of a TSV corpus and a two-file corpus equals the same corpora as files."""
    small = write_corpus(tmp_path / "small", count=80, seed=9, name="train")
    small_valid = write_corpus(tmp_path / "small", count=10, seed=90, name="valid")
    small_tsv = write_tsv(tmp_path / "small.tsv", *small)
    small_valid_tsv = write_tsv(tmp_path / "small_valid.tsv", *small_valid)
    big = {"src": files["train"][0], "tgt": files["train"][1], "name": "big"}
    big |= {"valid_src": files["valid"][0], "valid_tgt": files["valid"][1]}
    as_tsv = {"tsv": str(small_tsv), "valid_tsv": str(small_valid_tsv), "weight": 3}
    as_files = {"src": small[0], "tgt": small[1], "weight": 3}
    as_files |= {"valid_src": small_valid[0], "valid_tgt": small_valid[1]}
    dms = [
        ready(tmp_path / name, corpora=[{**small_corpus, "name": "small"}, big])
        for name, small_corpus in (("tsv", as_tsv), ("files", as_files))
    ]
    assert_same_data(*dms)
    assert dms[0].valid_segments == [("small", 0, 10), ("big", 10, 50)]
    valid = (
        small_valid[1].read_text("utf-8").splitlines()
        + files["valid"][1].read_text("utf-8").splitlines()
    )
    assert dms[0].valid_refs == valid
    assert [s.per_epoch for s in dms[0].corpus_shares] == [
        s.per_epoch for s in dms[1].corpus_shares
    ]
