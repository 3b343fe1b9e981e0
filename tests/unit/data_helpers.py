"""Tiny synthetic parallel corpora and SentencePiece models for the data tests."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

from nmt.tokenizer import SpmTokenizer

SRC_WORDS = [
    "der",
    "die",
    "das",
    "Haus",
    "Mann",
    "Frau",
    "sah",
    "ging",
    "über",
    "Brücke",
    "schön",
    "groß",
    "Kind",
    "Straße",
]
TGT_WORDS = [
    "the",
    "a",
    "house",
    "man",
    "woman",
    "saw",
    "went",
    "over",
    "bridge",
    "beautiful",
    "big",
    "child",
    "street",
]


def make_lines(words: list[str], count: int, seed: int, max_words: int = 12) -> list[str]:
    """Random sentences of 1..max_words words drawn from `words`."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(words, k=rng.randint(1, max_words))) for _ in range(count)]


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write lines with "\\n" terminators as UTF-8."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_corpus(directory: Path, count: int = 200, seed: int = 0, name: str = "train") -> tuple:
    """Write `name`.de / `name`.en with `count` random pairs; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    src = write_lines(directory / f"{name}.de", make_lines(SRC_WORDS, count, seed))
    tgt = write_lines(directory / f"{name}.en", make_lines(TGT_WORDS, count, seed + 1))
    return src, tgt


def train_tokenizer(files: list[Path], model_path: Path, vocab_size: int = 60) -> SpmTokenizer:
    """A small unigram model on `files` (two threads: the test machine is small)."""
    return SpmTokenizer.train(files, model_path, vocab_size=vocab_size, num_threads=2)


def separate_vocabularies() -> SimpleNamespace:
    """A stand-in for a DataModule whose source and target have different SentencePiece models
    (all that `TranslationModule.attach_vocabulary` reads before it refuses one)."""
    src, tgt = SimpleNamespace(model_bytes=b"src"), SimpleNamespace(model_bytes=b"tgt")
    return SimpleNamespace(src_tokenizer=src, tgt_tokenizer=tgt)
