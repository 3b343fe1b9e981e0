"""Read and validate parallel text.

Every entry point reads text through these functions, so the same rules hold
everywhere: files are UTF-8, a line ends at "\\n" and nowhere else (a "\\r",
U+2028, U+0085 or any other Unicode separator inside a line keeps it ONE line,
unlike `str.splitlines`), and both sides of a corpus have the same line count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def split_lines(text: str) -> list[str]:
    """Split on "\\n" only; a final newline does not start an extra empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def decode_utf8(data: bytes, name: str) -> str:
    """Decode UTF-8 bytes, raising ValueError that names `name` and the bad line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{name}: line {line}: not valid UTF-8 (byte 0x{data[err.start]:02x} at offset "
            f"{err.start})"
        ) from None


def read_lines(path: str | Path, *, allow_empty: bool = False) -> list[str]:
    """Read a UTF-8 text file as a list of lines (no line terminators).

    Args:
        path: the file.
        allow_empty: accept a file with no lines (translation input may be empty).

    Raises:
        ValueError: the file is missing, is a directory, is empty, or is not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")
    lines = split_lines(decode_utf8(path.read_bytes(), str(path)))
    if not lines and not allow_empty:
        raise ValueError(f"{path}: file is empty")
    return lines


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> tuple[list[str], list[str]]:
    """Read both sides of a parallel corpus and check that they align line by line."""
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    check_line_counts(src_path, len(src), tgt_path, len(tgt))
    return src, tgt


def check_line_counts(a_path: str | Path, a_count: int, b_path: str | Path, b_count: int) -> None:
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
