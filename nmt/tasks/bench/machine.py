"""The machine a benchmark runs on: its description and its fp32 matmul peak FLOP/s."""

from __future__ import annotations

import os
import platform
import time
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


def with_mfu(figures: dict[str, Any], peak_gflops: float) -> dict[str, Any]:
    """Add `mfu`: the phase's model GFLOP/s over the matmul peak GFLOP/s."""
    figures["mfu"] = figures["model_gflops"] / peak_gflops
    return figures
