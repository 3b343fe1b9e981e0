"""Reading and validating parallel text: one line per "\\n", UTF-8, counts, filtering."""

import pytest

from nmt.data import corpus
from nmt.data.corpus import (
    FilterReport,
    filter_reason,
    normalize_whitespace,
    read_lines,
    utf8_text,
)
from nmt.data.reader import TextSide, read_pairs

SEPARATORS = ["\r", "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_unicode_separators_do_not_split_lines(tmp_path, sep):
    path = tmp_path / "f.txt"
    path.write_bytes(f"a{sep}b\nc\n".encode())
    assert read_lines(path) == [f"a{sep}b", "c"]
    assert len(f"a{sep}b\nc\n".splitlines()) == 3  # what str.splitlines would have done


def test_final_newline_is_optional_and_empty_lines_are_kept(tmp_path):
    (tmp_path / "a").write_bytes(b"x\n\ny")
    assert read_lines(tmp_path / "a") == ["x", "", "y"]
    (tmp_path / "b").write_bytes(b"x\n\n")
    assert read_lines(tmp_path / "b") == ["x", ""]


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.de"
    path.write_bytes(b"gut\nauch gut\nhier \xc3\x28 kaputt\n")
    with pytest.raises(ValueError, match=rf"{path}: line 3: not valid UTF-8"):
        read_lines(path)


def test_missing_empty_and_directory(tmp_path):
    with pytest.raises(ValueError, match="file not found"):
        read_lines(tmp_path / "nope")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_lines(tmp_path / "empty")
    assert read_lines(tmp_path / "empty", allow_empty=True) == []
    with pytest.raises(ValueError, match="not a regular file"):
        read_lines(tmp_path)


@pytest.mark.parametrize("chunk_lines", [1, 2, 10])
def test_line_count_mismatch_names_both_files_and_counts(tmp_path, chunk_lines):
    src, tgt = tmp_path / "t.de", tmp_path / "t.en"
    src.write_text("a\nb\nc\n")
    tgt.write_text("a\nb\n")
    with pytest.raises(ValueError, match=rf"{src} has 3 lines, {tgt} has 2 lines"):
        list(read_pairs(TextSide(src), TextSide(tgt), chunk_lines))


def test_filter_reasons_and_report():
    pairs = [(5, 6), (0, 3), (120, 20), (10, 40), (30, 30)]
    reasons = [filter_reason(s, t, max_len=100, max_len_ratio=3.0) for s, t in pairs]
    assert reasons == [None, "empty side", "longer than 100", "length ratio above 3", None]
    report = FilterReport(total=5, kept=2)
    for reason in reasons:
        if reason:
            report.count(reason)
    assert str(report) == (
        "kept 2 of 5 pairs; removed: 1 empty side, 1 length ratio above 3, 1 longer than 100"
    )


def test_normalize_whitespace():
    assert normalize_whitespace("  a \t b\u2028c\u00a0 ") == "a b c"


def test_utf8_check_reads_blocks_and_names_line_and_column(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "_BLOCK_BYTES", 16)  # many blocks of whole lines
    lines = [f"zeile {i} äöü".encode() for i in range(40)]
    lines[29] = b"kaputt \xff hier"
    path = tmp_path / "big.de"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(ValueError, match=rf"{path}: line 30: .*byte 0xff at byte 8 of the line"):
        utf8_text(path, "error", tmp_path)
    clean = utf8_text(path, "replace", tmp_path / "clean")
    assert clean != path
    expected = path.read_bytes().decode("utf-8", errors="replace")
    assert clean.read_text(encoding="utf-8") == expected
    good = tmp_path / "good.de"
    good.write_bytes(b"\n".join(lines[:29]) + b"\n")
    assert utf8_text(good, "error", tmp_path) == good
