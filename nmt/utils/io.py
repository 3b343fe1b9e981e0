"""Crash-safe file output: write to a temporary file in the same directory, then rename."""

from __future__ import annotations

import contextlib
import filecmp
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

TMP_SUFFIX = ".tmp"
# atomic_open's temporary names: "." + target name + "." + mkstemp's 8 random characters.
_TEMP_NAME = re.compile(rf"\..+\.[a-z0-9_]{{8}}{re.escape(TMP_SUFFIX)}")


@contextlib.contextmanager
def atomic_open(
    path: str | Path, mode: str = "w", *, only_if_changed: bool = False
) -> Iterator[IO]:
    """Open a temporary sibling of `path`; on success it replaces `path`, on error it vanishes.

    An interrupted writer therefore never leaves a half-written file under the final name.
    The file gets the permissions `open()` would give it (mkstemp's are owner-only). With
    `only_if_changed`, a `path` that already holds the same bytes is left as it is (its
    modification time too) and the temporary file is removed.
    """
    path = Path(path)
    with naming_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    encoding = None if "b" in mode else "utf-8"
    newline = None if "b" in mode else "\n"
    handle = os.fdopen(fd, mode, encoding=encoding, newline=newline)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        yield handle
        with naming_errors(path):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            if only_if_changed and path.is_file() and filecmp.cmp(tmp, path, shallow=False):
                os.unlink(tmp)
                return
            os.replace(tmp, path)
            fsync_dir(path.parent)  # the rename itself survives a power loss
    except BaseException:
        # Closing flushes what is buffered, which fails again on a full disk: the error
        # being raised is the one to report.
        with contextlib.suppress(OSError):
            handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def fsync_dir(directory: str | Path) -> None:
    """Flush `directory`'s entries (a file just renamed into it) to the disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_open` left in `directory`; return them, sorted.

    A writer killed with SIGKILL (or by a power loss) mid-write cannot remove its temporary
    file. Only names of `atomic_open`'s pattern are touched (".NAME.XXXXXXXX.tmp", the X from
    `tempfile.mkstemp`); call this when no other writer uses the directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = sorted(p for p in directory.iterdir() if _TEMP_NAME.fullmatch(p.name) and p.is_file())
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return stale


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def naming_errors(path: str | Path) -> Iterator[None]:
    """Re-raise an OSError (failed mkdir, write, flush, rename...) as one naming `path`.

    A full disk surfaces as a nameless `OSError(ENOSPC)` from `write()`; with the path the
    entry points can print one line saying which file could not be written.
    """
    try:
        yield
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err


def atomic_write_lines(path: str | Path, lines: Iterable[str]) -> None:
    """Write one line per item, each terminated by "\\n", atomically."""
    with atomic_open(path) as handle, naming_errors(path):
        for line in lines:
            handle.write(line + "\n")
