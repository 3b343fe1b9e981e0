"""Streaming readers: compressed files, TSV columns, paired chunks and their errors."""

import bz2
import gzip
import lzma

import pytest

from nmt.data.compressed import open_binary
from nmt.data.corpus import Utf8Decoder, read_line_chunks, read_lines
from nmt.data.reader import TextSide, line_chunks, read_pairs, tsv_sides

COMPRESSORS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
TEXT = "eins\r zwei\n\ndrei\u2028vier\nfünf"  # "\n" splits; "\r", U+2028 do not; no final "\n"
LINES = ["eins\r zwei", "", "drei\u2028vier", "fünf"]


@pytest.mark.parametrize("suffix", ["", *COMPRESSORS])
def test_compressed_files_read_like_plain_ones(tmp_path, suffix):
    path = tmp_path / f"f.de{suffix}"
    data = TEXT.encode()
    path.write_bytes(COMPRESSORS[suffix](data) if suffix else data)
    assert read_lines(path) == LINES
    for chunk_lines in (1, 3, 100):
        chunks = list(line_chunks(TextSide(path), chunk_lines))
        assert [line for chunk in chunks for line in chunk] == LINES
        assert all(len(chunk) == chunk_lines for chunk in chunks[:-1])


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_corrupt_compressed_file_names_the_file(tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(COMPRESSORS[suffix](b"a\n" * 1000)[:-8])  # truncated
    with pytest.raises(ValueError, match=rf"{path}: cannot read it as"):
        read_lines(path)
    plain = tmp_path / f"plain{suffix}"
    plain.write_bytes(b"not compressed\n")
    with pytest.raises(ValueError, match=rf"{plain}: cannot read it as"):
        list(line_chunks(TextSide(plain), 10))


def test_invalid_utf8_in_compressed_file_names_line(tmp_path):
    path = tmp_path / "bad.de.gz"
    path.write_bytes(gzip.compress(b"gut\nauch gut\nhier \xc3\x28 kaputt\n"))
    with pytest.raises(ValueError, match=rf"{path}: line 3: not valid UTF-8"):
        list(line_chunks(TextSide(path), 2))


@pytest.mark.parametrize("chunk_lines", [1, 2, 50])
def test_tsv_pairs_equal_two_files(tmp_path, chunk_lines):
    src = ["a b", "", "c\rd", "e"]
    tgt = ["x", "y z", "", "w"]
    tsv = tmp_path / "c.tsv.gz"
    tsv.write_bytes(
        gzip.compress("".join(f"{s}\t{t}\n" for s, t in zip(src, tgt, strict=True)).encode())
    )
    (tmp_path / "c.de").write_text("".join(x + "\n" for x in src), encoding="utf-8")
    (tmp_path / "c.en").write_text("".join(x + "\n" for x in tgt), encoding="utf-8")
    from_tsv = list(read_pairs(*tsv_sides(tsv), chunk_lines))
    from_files = list(
        read_pairs(TextSide(tmp_path / "c.de"), TextSide(tmp_path / "c.en"), chunk_lines)
    )
    assert from_tsv == from_files
    assert [s for chunk, _ in from_tsv for s in chunk] == src
    assert [t for _, chunk in from_tsv for t in chunk] == tgt
    # One column alone (SentencePiece input) reads the same lines.
    assert [t for chunk in line_chunks(tsv_sides(tsv)[1], chunk_lines) for t in chunk] == tgt


@pytest.mark.parametrize("row", ["only one column", "a\tb\tc"])
def test_tsv_column_count_names_file_and_line(tmp_path, row):
    tsv = tmp_path / "c.tsv"
    tsv.write_text(f"a\tb\nc\td\n{row}\n", encoding="utf-8")
    columns = row.count("\t") + 1
    with pytest.raises(ValueError, match=rf"{tsv}: line 3: {columns} tab-separated column"):
        list(read_pairs(*tsv_sides(tsv), 2))


def test_empty_corpus_is_an_error(tmp_path):
    (tmp_path / "a").write_bytes(b"")
    (tmp_path / "b").write_bytes(b"")
    with pytest.raises(ValueError, match="file is empty"):
        list(read_pairs(TextSide(tmp_path / "a"), TextSide(tmp_path / "b"), 10))


def test_translate_input_reader_decompresses(tmp_path):
    path = tmp_path / "in.de.bz2"
    path.write_bytes(bz2.compress(TEXT.encode()))
    with open_binary(path) as stream:
        chunks = list(read_line_chunks(stream, Utf8Decoder(str(path)), 3))
    assert chunks == [LINES[:3], LINES[3:]]
