"""Multilingual corpus: tags, combined files (temperature sampling: test_mixing.py)."""

import pytest

from nmt.data.multilingual import (
    Direction,
    build_split,
    lang_tag,
    tag_line,
)
from nmt.translator import output_language


def write_pair(directory, split, src_lang, tgt_lang, pairs):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{split}.{src_lang}").write_text("".join(s + "\n" for s, _ in pairs))
    (directory / f"{split}.{tgt_lang}").write_text("".join(t + "\n" for _, t in pairs))


def test_tag_line():
    assert lang_tag("es") == "<2es>"
    assert tag_line("Hola mundo", "en") == "<2en> Hola mundo"


def test_build_split_tags_each_direction_in_order_and_rewrites_only_on_change(tmp_path):
    write_pair(tmp_path / "pt-en", "train", "pt", "en", [("um", "one"), ("dois", "two")])
    write_pair(tmp_path / "es-en", "train", "es", "en", [("uno", "one")])
    directions = [
        Direction("pt", "en", tmp_path / "pt-en"),
        Direction("en", "pt", tmp_path / "pt-en"),  # the same files, the other way round
        Direction("es", "en", tmp_path / "es-en"),
    ]
    out = (tmp_path / "multi" / "train.src", tmp_path / "multi" / "train.tgt")
    sizes = build_split(directions, "train", out)
    assert sizes == [2, 2, 1]
    assert out[0].read_text().splitlines() == [
        "<2en> um",
        "<2en> dois",
        "<2pt> one",
        "<2pt> two",
        "<2en> uno",
    ]
    assert out[1].read_text().splitlines() == ["one", "two", "um", "dois", "one"]
    stamps = [p.stat().st_mtime_ns for p in out]
    assert build_split(directions, "train", out) == sizes
    assert [p.stat().st_mtime_ns for p in out] == stamps  # unchanged: not rewritten
    assert build_split(directions, "train", out, max_lines=1) == [1, 1, 1]
    assert out[1].read_text().splitlines() == ["one", "um", "one"]


def test_build_split_checks_line_counts(tmp_path):
    write_pair(tmp_path / "pt-en", "train", "pt", "en", [("um", "one")])
    (tmp_path / "pt-en" / "train.en").write_text("one\ntwo\n")
    out = (tmp_path / "train.src", tmp_path / "train.tgt")
    with pytest.raises(ValueError, match="line counts differ.*train.pt has 1 lines"):
        build_split([Direction("pt", "en", tmp_path / "pt-en")], "train", out)


def test_output_language_rules():
    assert output_language("m.ckpt", "multi", ["en", "es"], "es") == "es"
    assert output_language("b.ckpt", "en", [], None) == "en"
    assert output_language("b.ckpt", "en", [], "en") == "en"
    with pytest.raises(ValueError, match=r"m.ckpt is multilingual .* en, es: no tgt_lang"):
        output_language("m.ckpt", "multi", ["en", "es"], None)
    with pytest.raises(ValueError, match="tgt_lang=fr is not known"):
        output_language("m.ckpt", "multi", ["en", "es"], "fr")
    with pytest.raises(ValueError, match="tgt_lang=de: ckpt b.ckpt only translates into en"):
        output_language("b.ckpt", "en", [], "de")
