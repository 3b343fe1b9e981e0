"""Stream the lines of parallel text in bounded chunks: two aligned files, or one TSV file.

A corpus side is a `TextSide`: a whole file (plain or compressed, `nmt.data.compressed`) or
one column of a two-column TSV file (source TAB target, as OPUS and Tatoeba distribute
them). Every reader here holds one chunk of lines at a time, so memory depends on the chunk
and the longest line, never on the corpus; the rules of `nmt.data.corpus` hold (UTF-8 named
by file and line, "\\n"-only lines, equal line counts), and a TSV line without exactly two
columns stops with its file and line.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt.data.compressed import open_binary
from nmt.data.corpus import Utf8Decoder, check_line_counts, read_line_chunks
from nmt.utils.io import atomic_open

TSV_COLUMNS = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextSide:
    """One side of a parallel corpus: a text file, or column 0/1 of a two-column TSV file."""

    path: Path
    column: int | None = None  # None: the whole line

    def __str__(self) -> str:
        return str(self.path) if self.column is None else f"{self.path} (column {self.column + 1})"


def tsv_sides(path: str | Path) -> tuple[TextSide, TextSide]:
    """The source and target sides of a TSV file."""
    return TextSide(Path(path), 0), TextSide(Path(path), 1)


def as_side(side: str | Path | TextSide) -> TextSide:
    """A path as the side made of the whole file; a TextSide unchanged."""
    return side if isinstance(side, TextSide) else TextSide(Path(side))


def line_chunks(
    side: TextSide, chunk_lines: int, on_invalid_utf8: str = "error"
) -> Iterator[list[str]]:
    """Yield the decoded lines of one side in lists of `chunk_lines` (the last may be shorter)."""
    for first_line, lines in _decoded(side.path, chunk_lines, on_invalid_utf8):
        if side.column is None:
            yield lines
        else:
            yield [row[side.column] for row in tsv_rows(lines, side.path, first_line)]


def read_side(
    side: TextSide,
    *,
    allow_empty: bool = False,
    on_invalid_utf8: str = "error",
    chunk_lines: int = 10_000,
) -> list[str]:
    """All lines of one side, in memory (a valid or test set, not a training corpus).

    Raises:
        ValueError: the file is missing, not UTF-8, a TSV line has another column count, or
            (unless `allow_empty`) the file is empty.
    """
    lines = [line for chunk in line_chunks(side, chunk_lines, on_invalid_utf8) for line in chunk]
    if not lines and not allow_empty:
        raise ValueError(f"{side.path}: file is empty")
    return lines


def _decoded(path: Path, chunk_lines: int, on_invalid_utf8: str) -> Iterator[tuple[int, list[str]]]:
    """(number of the first line, lines) of each chunk of a file; replacements are logged."""
    decoder = Utf8Decoder(str(path), on_invalid_utf8)
    first_line = 1
    with open_binary(path) as stream:
        for lines in read_line_chunks(stream, decoder, chunk_lines):
            yield first_line, lines
            first_line += len(lines)
    summary = decoder.summary()
    if summary:
        log.warning(summary)


def tsv_rows(lines: list[str], path: Path, first_line: int) -> list[list[str]]:
    """Split TSV lines into their two columns; another column count names file and line."""
    rows = [line.split("\t") for line in lines]
    for number, row in enumerate(rows, start=first_line):
        if len(row) != TSV_COLUMNS:
            raise ValueError(
                f"{path}: line {number}: {len(row)} tab-separated column(s), expected "
                f"{TSV_COLUMNS} (source TAB target)"
            )
    return rows


def read_pairs(
    src: TextSide, tgt: TextSide, chunk_lines: int, on_invalid_utf8: str = "error"
) -> Iterator[tuple[list[str], list[str]]]:
    """Yield (source lines, target lines) of a parallel corpus, `chunk_lines` pairs at a time.

    Both columns of one TSV file are read in one pass. Two files are read side by side; when
    one ends first, the rest of the other is counted and the error names both counts.

    Raises:
        ValueError: a file is missing, empty, not UTF-8, a TSV line has another column
            count, or the line counts differ.
    """
    pairs = 0
    if src.path == tgt.path and src.column is not None and tgt.column is not None:
        for first_line, lines in _decoded(src.path, chunk_lines, on_invalid_utf8):
            rows = tsv_rows(lines, src.path, first_line)
            pairs += len(rows)
            yield [row[src.column] for row in rows], [row[tgt.column] for row in rows]
    else:
        sources = line_chunks(src, chunk_lines, on_invalid_utf8)
        targets = line_chunks(tgt, chunk_lines, on_invalid_utf8)
        for src_lines, tgt_lines in itertools.zip_longest(sources, targets):
            if src_lines is None or tgt_lines is None or len(src_lines) != len(tgt_lines):
                src_count = pairs + len(src_lines or []) + sum(map(len, sources))
                tgt_count = pairs + len(tgt_lines or []) + sum(map(len, targets))
                check_line_counts(src, src_count, tgt, tgt_count)
            pairs += len(src_lines)
            yield src_lines, tgt_lines
    if not pairs:
        raise ValueError(f"{src.path}: file is empty")


def _count_lines(path: Path) -> int:
    """The number of lines of a file (a last line without b"\\n" counts)."""
    with open_binary(path) as stream:
        return sum(1 for _ in stream)


def write_sample(
    sides: list[TextSide], out: list[Path], size: int, seed: int, chunk_lines: int = 10_000
) -> int:
    """Write the lines of each side, in order, to the plain text file beside it in `out`.

    SentencePiece's training input: finite plain files whatever the inputs' form (it reads
    neither compressed files nor TSV columns), one per side, since its model depends on how
    the lines are split into files. With `size` > 0 and more lines than that in all, each line
    is kept with probability size/total (seeded), so about `size` lines are written and
    SentencePiece's own `input_sentence_size` caps the rest; otherwise every line is written,
    so the model equals one trained on the files themselves. Two passes (count, then write),
    one chunk in memory. Returns the lines written.
    """
    total = sum(_count_lines(side.path) for side in sides)
    keep = 1.0 if size <= 0 or total <= size else size / total
    rng = np.random.default_rng(seed)
    written = 0
    for side, path in zip(sides, out, strict=True):
        with atomic_open(path) as handle:
            for lines in line_chunks(side, chunk_lines):
                if keep < 1.0:
                    lines = list(itertools.compress(lines, rng.random(len(lines)) < keep))
                handle.write("".join(line + "\n" for line in lines))
                written += len(lines)
    return written
