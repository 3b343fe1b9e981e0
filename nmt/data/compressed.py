"""Open text inputs as people have them: plain, or compressed as .gz, .bz2 or .xz.

The format is chosen by the file name's last suffix (as zcat/bzcat/xzcat users expect); a
damaged or mislabelled compressed file stops with one line naming it.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

OPENERS: dict[str, Callable[..., BinaryIO]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def check_file(path: Path) -> None:
    """Raise ValueError unless `path` is an existing regular file."""
    if not path.exists():
        raise ValueError(f"{path}: file not found")
    if not path.is_file():
        raise ValueError(f"{path}: not a regular file")


def plain_name(path: str | Path) -> str:
    """The file name without its compression suffix (`train.de.gz` -> `train.de`)."""
    path = Path(path)
    return path.stem if path.suffix.lower() in OPENERS else path.name


@contextlib.contextmanager
def open_binary(path: str | Path) -> Iterator[BinaryIO]:
    """Open `path` for reading bytes, decompressing it when its name ends in .gz/.bz2/.xz.

    Errors of the decompressor while the caller reads (a truncated or corrupt file, or a
    plain file named .gz) are raised as ValueError naming the file; errors of the caller's
    own work inside the `with` block pass unchanged.
    """
    path = Path(path)
    check_file(path)
    opener = OPENERS.get(path.suffix.lower())
    if opener is None:
        with open(path, "rb") as handle:
            yield handle
        return
    with opener(path, "rb") as handle:
        yield _Decompressing(handle, path)  # type: ignore[misc]


class _Decompressing:
    """The reading methods of a decompressing stream, its errors naming the file."""

    def __init__(self, stream: BinaryIO, path: Path):
        self._stream = stream
        self._path = path

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def read(self, size: int = -1) -> bytes:
        with self._naming():
            return self._stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        with self._naming():
            return self._stream.readline(size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        with self._naming():
            return self._stream.readlines(hint)

    @contextlib.contextmanager
    def _naming(self) -> Iterator[None]:
        try:
            yield
        except (OSError, EOFError, lzma.LZMAError) as err:
            kind = self._path.suffix.lower().lstrip(".")
            message = f"{self._path}: cannot read it as {kind}-compressed data ({err})"
            raise ValueError(message) from None
