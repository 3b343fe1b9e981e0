"""Fresh processes and their memory: the one place the benchmarks read RSS (Linux /proc).

Phases run through `in_fresh_process` get a peak RSS of their own, and import only what
they use (a translation phase does not pay for Lightning).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Runner = Callable[..., Any]
"""How a phase function runs: `in_fresh_process` or `in_this_process`."""


def in_this_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` here (`bench.isolate=false`: faster, but memory figures are shared)."""
    return fn(*args)


def in_fresh_process(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` in a new interpreter (spawn) and return its result or raise its error.

    `fn` must be a module-level function and its arguments and result picklable.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_run_and_send, args=(sender, fn, args))
    process.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:  # the child died without sending (killed, out of memory)
        process.join()
        raise RuntimeError(
            f"{fn.__name__} died in its process (exit code {process.exitcode})"
        ) from None
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result


def _run_and_send(sender: Any, fn: Callable[..., Any], args: tuple) -> None:
    try:
        sender.send(fn(*args))
    except Exception as err:  # re-raised in the parent
        sender.send(err)


def peak_rss_mb() -> float:
    """Peak RSS of this process image in MiB (VmHWM; 0 where /proc is missing).

    Unlike `ru_maxrss`, VmHWM does not include the parent a fresh process was forked from.
    """
    return _status_kb("self", "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """Current RSS of process `pid` in MiB (VmRSS; 0 once it is gone)."""
    return _status_kb(pid, "VmRSS") / 1024


def _status_kb(pid: int | str, field: str) -> int:
    """A "kB" field of /proc/PID/status, 0 if the process (or /proc) is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def _cmdline(pid: int | str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _worker_children(pid: int) -> list[int]:
    """Children of `pid` that run their own program.

    A child between fork and exec still maps the parent's memory and would show the
    parent's RSS again, so only children whose command line differs are counted.
    """
    own = _cmdline(pid)
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except FileNotFoundError:
            continue
    return [child for child in found if _cmdline(child) not in (own, b"")]


class RssMonitor:
    """Sample the RSS of this process plus its worker children every 20 ms, keeping the peaks.

    Attributes:
        tree_peak_mb: largest sum of this process's and its children's RSS seen.
        child_peak_mb: largest RSS of a single child seen.
    """

    def __init__(self) -> None:
        self.tree_peak_mb = 0.0
        self.child_peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pid = os.getpid()
        while not self._stop.wait(0.02):
            children = [_status_kb(child, "VmRSS") / 1024 for child in _worker_children(pid)]
            own = _status_kb(pid, "VmRSS") / 1024
            self.tree_peak_mb = max(self.tree_peak_mb, own + sum(children))
            self.child_peak_mb = max([self.child_peak_mb, *children])
