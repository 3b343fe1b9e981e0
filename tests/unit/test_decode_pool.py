"""DecodePool: jobs run in other processes, results come back in job order, errors surface."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from nmt.decode_pool import DecodePool


def echo_after(index: int, seconds: float) -> tuple[int, int, int]:
    """Sleep, then say which job this was, in which process, with how many threads."""
    time.sleep(seconds)
    return index, os.getpid(), torch.get_num_threads()


def fail_on_two(index: int) -> int:
    if index == 2:
        raise ValueError(f"bad batch {index}")
    return index


def test_results_keep_job_order_across_processes():
    pool = DecodePool(echo_after, workers=2)
    try:
        # Job 0 is the slowest: the other worker finishes jobs 1..5 first.
        jobs = [(0, 0.5)] + [(index, 0.05) for index in range(1, 6)]
        results = list(pool.map(jobs))
    finally:
        pool.close()
    assert [index for index, _, _ in results] == list(range(6))
    pids = {pid for _, pid, _ in results}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {threads for _, _, threads in results} == {1}


def test_a_failing_job_raises_its_error_in_the_caller():
    pool = DecodePool(fail_on_two, workers=2)
    try:
        with pytest.raises(ValueError, match="bad batch 2"):
            list(pool.map([(index,) for index in range(4)]))
    finally:
        pool.close()


FORK_AFTER_THREADS = """
import torch
from nmt.decode_pool import DecodePool
torch.set_num_threads(2)
a = torch.randn(1000, 1000)
(a @ a).sum()  # the parent's OpenMP threads exist before the fork
def job(i):
    b = torch.randn(1000, 1000)
    return float((b @ b).sum()) * 0 + i
pool = DecodePool(job, 2)
print(list(pool.map([(i,) for i in range(4)])))
pool.close()
"""


def test_workers_forked_after_threaded_work_finish():
    # With two threads per worker this hangs in GNU OpenMP: the workers stay single-threaded.
    done = subprocess.run(
        [sys.executable, "-c", FORK_AFTER_THREADS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0.0, 1.0, 2.0, 3.0]"
