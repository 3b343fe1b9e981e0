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


UNCLOSED_IN_A_CHILD = """
import multiprocessing
from nmt.decode_pool import DecodePool
def job(i):
    return i * 2
def child(queue):
    pool = DecodePool(job, 2)  # never closed: the child's exit must stop the workers
    queue.put(list(pool.map([(i,) for i in range(4)])))
if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    print(queue.get(timeout=60))
    process.join(timeout=60)
    print(process.exitcode)
"""


def test_an_unclosed_pool_in_a_spawned_child_lets_the_child_exit(tmp_path):
    # The serve bench translated in such a child and the child never exited: multiprocessing
    # joined the idle workers before anything told them to stop.
    script = tmp_path / "unclosed.py"
    script.write_text(UNCLOSED_IN_A_CHILD)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0,", "2,", "4,", "6]", "0"]
