"""Benchmark helpers that know nothing about the model: matmul peak, machine, memory, processes.

Phases run through `in_fresh_process` get a peak RSS of their own, and import only what
they use (a translation phase does not pay for Lightning).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def matmul_peak_gflops(size: int, reps: int) -> dict[str, float]:
    """Measure fp32 square matmul speed with torch's current thread count, best of `reps`.

    One untimed product warms up the thread pool and allocator first. A product of two
    `size` x `size` matrices counts 2·size³ FLOPs.

    Args:
        size: matrix side.
        reps: timed products; the fastest one is kept.

    Returns:
        matmul_peak_gflops, and the size, reps and best seconds it comes from.
    """
    if size < 1 or reps < 1:
        raise ValueError(f"bench.matmul_size and bench.matmul_reps must be >= 1, got {size}/{reps}")
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return {
        "matmul_peak_gflops": 2 * size**3 / best / 1e9,
        "matmul_size": size,
        "matmul_reps": reps,
        "matmul_best_s": best,
    }


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """Describe the machine and the torch build a benchmark ran on."""
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
    }


def peak_rss_mb() -> float:
    """Peak RSS of this process image in MiB (VmHWM, Linux; 0 where /proc is missing).

    Unlike `ru_maxrss`, VmHWM does not include the parent a fresh process was forked from.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


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
