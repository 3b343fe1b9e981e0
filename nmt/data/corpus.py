"""Read and validate parallel text.

Every entry point reads text through these functions, so the same rules hold
everywhere: files are UTF-8, a line ends at "\\n" and nowhere else (a "\\r",
U+2028, U+0085 or any other Unicode separator inside a line keeps it ONE line,
unlike `str.splitlines`), and both sides of a corpus have the same line count.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nmt.data.compressed import open_binary, plain_name
from nmt.utils.io import atomic_open


def split_lines(text: str) -> list[str]:
    """Split on "\\n" only; a final newline does not start an extra empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


ON_INVALID_UTF8 = ("error", "replace")
_REPLACEMENT_BYTES = "\ufffd".encode()
# Bytes of whole lines checked at a time by `utf8_text`.
_BLOCK_BYTES = 1 << 22
log = logging.getLogger(__name__)


@dataclass
class Utf8Decoder:
    """Decode one input's bytes piece by piece under an invalid-UTF-8 policy.

    Args:
        name: the file (or "<stdin>") named in messages.
        on_invalid: "error" raises ValueError naming the line; "replace" puts U+FFFD for
            each invalid byte sequence and counts them.
    """

    name: str
    on_invalid: str = "error"
    replaced: int = 0
    first_line: int | None = None  # line of the first replaced sequence

    def __post_init__(self) -> None:
        if self.on_invalid not in ON_INVALID_UTF8:
            raise ValueError(
                f"on_invalid_utf8 must be one of {', '.join(ON_INVALID_UTF8)}, "
                f"got {self.on_invalid!r}"
            )

    def decode(self, data: bytes, first_line: int = 1) -> str:
        """Decode `data`, whose first line is line `first_line` of the input."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = first_line + data.count(b"\n", 0, err.start)
            if self.on_invalid == "error":
                column = err.start - data.rfind(b"\n", 0, err.start)  # 1-based byte column
                raise ValueError(
                    f"{self.name}: line {line}: not valid UTF-8 (byte 0x{data[err.start]:02x} "
                    f"at byte {column} of the line); on_invalid_utf8=replace substitutes U+FFFD"
                ) from None
        text = data.decode("utf-8", errors="replace")
        # Genuine U+FFFD in the input are valid UTF-8 and must not be counted.
        self.replaced += text.count("\ufffd") - data.count(_REPLACEMENT_BYTES)
        self.first_line = self.first_line or line
        return text

    def summary(self) -> str | None:
        """One line saying how many sequences were replaced, or None when none were."""
        if not self.replaced:
            return None
        return (
            f"{self.name}: replaced {self.replaced} invalid UTF-8 sequence(s) with U+FFFD "
            f"(first on line {self.first_line})"
        )


def read_lines(
    path: str | Path, *, allow_empty: bool = False, on_invalid_utf8: str = "error"
) -> list[str]:
    """Read a UTF-8 text file (plain, .gz, .bz2 or .xz) as a list of lines (no terminators).

    Args:
        path: the file.
        allow_empty: accept a file with no lines (translation input may be empty).
        on_invalid_utf8: "error", or "replace" (U+FFFD, counted in a logged warning).

    Raises:
        ValueError: the file is missing, is a directory, is empty, or is not UTF-8.
    """
    path = Path(path)
    decoder = Utf8Decoder(str(path), on_invalid_utf8)
    with open_binary(path) as stream:
        lines = split_lines(decoder.decode(stream.read()))
    summary = decoder.summary()
    if summary:
        log.warning(summary)
    if not lines and not allow_empty:
        raise ValueError(f"{path}: file is empty")
    return lines


def utf8_text(path: str | Path, on_invalid_utf8: str, clean_dir: Path) -> Path:
    """Check that a text file is UTF-8 and return the file to read instead of it.

    That is `path` itself when it decodes; with on_invalid_utf8="replace" a file that does
    not is copied, invalid sequences replaced by U+FFFD (counted in a logged warning), to
    `clean_dir/<content hash>.<name>` (plain text: a .gz/.bz2/.xz suffix is dropped) and
    that copy is returned. The file is read in blocks of
    whole lines, so memory does not grow with its size.

    Raises:
        ValueError: the file is missing, or (with "error") not UTF-8, naming the line.
    """
    path = Path(path)
    decoder = Utf8Decoder(str(path), on_invalid_utf8)
    digest = hashlib.sha256()
    for first_line, data in _line_blocks(path):
        digest.update(data)
        decoder.decode(data, first_line)
    if not decoder.replaced:
        return path
    log.warning(decoder.summary())
    clean = Path(clean_dir) / f"{digest.hexdigest()[:20]}.{plain_name(path)}"
    if not clean.is_file():
        cleaner = Utf8Decoder(str(path), on_invalid_utf8)
        with atomic_open(clean) as handle:
            for first_line, data in _line_blocks(path):
                handle.write(cleaner.decode(data, first_line))
    return clean


def _line_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield (number of its first line, bytes) for blocks of about _BLOCK_BYTES whole lines.

    Blocks end after b"\n", which never occurs inside a UTF-8 sequence, so each block decodes
    on its own.
    """
    first_line = 1
    with open_binary(path) as stream:
        for lines in iter(lambda: stream.readlines(_BLOCK_BYTES), []):
            yield first_line, b"".join(lines)
            first_line += len(lines)


def read_line_chunks(
    stream: BinaryIO, decoder: Utf8Decoder, chunk_lines: int
) -> Iterator[list[str]]:
    """Yield the lines of a binary stream in lists of at most `chunk_lines`, in order.

    Only one chunk is held at a time, so memory does not grow with the input's length
    (only with its longest line). Lines end at b"\n" only, as in `split_lines`.
    """
    if chunk_lines < 1:
        raise ValueError(f"chunk_lines must be >= 1, got {chunk_lines}")
    first_line = 1
    chunk: list[bytes] = []
    for raw in itertools.chain(stream, [None]):
        if raw is not None:
            chunk.append(raw)
        if chunk and (raw is None or len(chunk) == chunk_lines):
            yield split_lines(decoder.decode(b"".join(chunk), first_line))
            first_line += len(chunk)
            chunk = []


def check_line_counts(a_path: object, a_count: int, b_path: object, b_count: int) -> None:
    """Raise ValueError naming both files and counts when they differ."""
    if a_count != b_count:
        raise ValueError(
            f"line counts differ: {a_path} has {a_count} lines, {b_path} has {b_count} lines"
        )


def normalize_whitespace(line: str) -> str:
    """Collapse runs of whitespace (any Unicode space or separator) to one space and strip."""
    return " ".join(line.split())


@dataclass
class FilterReport:
    """How many pairs a filter kept and why it removed the others."""

    total: int = 0
    kept: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> None:
        self.removed[reason] = self.removed.get(reason, 0) + 1

    def __str__(self) -> str:
        parts = ", ".join(f"{n} {why}" for why, n in sorted(self.removed.items())) or "none"
        return f"kept {self.kept} of {self.total} pairs; removed: {parts}"


def filter_reason(
    src_len: int, tgt_len: int, max_len: int | None, max_len_ratio: float | None
) -> str | None:
    """Return why a pair of lengths should be removed, or None to keep it."""
    if src_len == 0 or tgt_len == 0:
        return "empty side"
    if max_len is not None and max(src_len, tgt_len) > max_len:
        return f"longer than {max_len}"
    if max_len_ratio is not None and max(src_len, tgt_len) > max_len_ratio * min(src_len, tgt_len):
        return f"length ratio above {max_len_ratio:g}"
    return None
