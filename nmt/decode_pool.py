"""Worker processes that decode whole batches of one translator, results in submission order.

On a CPU the decoder's step is a chain of small matrix products (a few hundred rows of beams
times the hidden size): one thread keeps such a product near its matmul peak, two threads on the
same product gain little. `DecodePool` instead runs N single-threaded processes; every worker
decodes batches on its own, taking the next one as soon as it is free, and `map`
yields the results in the order the batches were given, so the output order never depends on
which worker finished first.

The workers are forked from the process that owns the translator: they share its loaded (and
possibly quantised) weights copy-on-write and need no checkpoint of their own. They stay at one
intra-op thread: GNU OpenMP is not fork-safe, and a forked child that opens a parallel region
after its parent used OpenMP threads hangs (measured here with 2 threads per worker). A failed batch
raises its error in the caller; a worker that dies (e.g. killed for memory) raises
`BrokenProcessPool` there instead of hanging. A pool that is never closed is shut down when
its process exits, also where that process is itself a multiprocessing child (whose exit
joins its children before any `atexit` hook would stop the idle workers).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
import pickle
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

# The decode function of the forked translator, set once in every worker (see _start_worker).
_decode: Callable[..., Any] | None = None


def _start_worker(decode: Callable[..., Any]) -> None:
    """Worker initialiser: keep `decode`, use one intra-op thread, die with the parent."""
    global _decode
    _decode = decode
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        import ctypes

        # PR_SET_PDEATHSIG = 1: a parent killed outright (SIGKILL) takes its workers with it.
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _run(job: tuple[Any, ...]) -> bytes:
    """Decode one batch in a worker; the result travels as plain pickle bytes.

    Plain pickle copies any tensor in the result (attention matrices) into the message, where
    the executor's own pickler would move it to shared memory, one file descriptor per tensor.
    """
    assert _decode is not None, "DecodePool worker used before its initialiser ran"
    return pickle.dumps(_decode(*job), protocol=pickle.HIGHEST_PROTOCOL)


class DecodePool:
    """`workers` forked single-threaded processes calling `decode(*job)` for each job.

    Args:
        decode: the function every worker calls (a bound method of the translator: the workers
            get it by fork, never by pickling).
        workers: number of processes.
    """

    def __init__(self, decode: Callable[..., Any], workers: int) -> None:
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ValueError(f"workers={workers} needs the fork start method (not on this OS)")
        self.workers = workers
        self._executor = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_start_worker,
            initargs=(decode,),
        )
        # Runs at close(), when the pool is collected, or at exit before multiprocessing joins
        # the workers: a spawned child that returned without close() would otherwise wait
        # forever for workers that wait for work (the executor's own exit hook comes later).
        self._shutdown = multiprocessing.util.Finalize(
            self,
            self._executor.shutdown,
            kwargs={"wait": True, "cancel_futures": True},
            exitpriority=10,
        )

    def map(self, jobs: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """Decode every job on the first free worker; yield the results in the jobs' order."""
        for message in self._executor.map(_run, jobs):
            yield pickle.loads(message)

    def close(self) -> None:
        """Stop the workers (they finish the jobs already given)."""
        self._shutdown()
