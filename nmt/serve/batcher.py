"""Dynamic batching: one worker thread runs one call for the requests that arrive together.

Requests are queued with a key (their search parameters). The worker takes the oldest
request, waits at most `max_wait_s` from its arrival for more requests with the same key
(or until `max_batch_segments` segments are there), runs `run_batch(key, segments)` once
for all of them and hands each request its own slice of the results, in order. Requests
with another key wait for a later call: one call never mixes search parameters. While the
worker is busy, new requests queue up, so a loaded server makes larger batches by itself.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[Any, list[str]], Sequence[Any]]
"""run_batch(key, segments) -> one result per segment, in order."""


class QueueFullError(Exception):
    """More than `max_queued_requests` requests are waiting."""


class ClosedError(Exception):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Job:
    key: Hashable
    segments: list[str]
    future: Future = field(default_factory=Future)
    arrival: float = field(default_factory=time.monotonic)


class Batcher:
    """A bounded request queue in front of one worker thread.

    Args:
        run_batch: translates a list of segments with the search parameters `key`.
        max_wait_s: longest wait of a batch's first request for others to join it.
        max_batch_segments: segment budget of one call; a request larger than that runs
            alone, a request is never split.
        max_queued_requests: requests that may wait at once; `submit` refuses more.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_wait_s: float,
        max_batch_segments: int,
        max_queued_requests: int,
    ) -> None:
        self._run_batch = run_batch
        self._max_wait_s = max_wait_s
        self._max_batch_segments = max_batch_segments
        self._max_queued = max_queued_requests
        self._queue: deque[_Job] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="nmt-batcher", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def submit(self, key: Hashable, segments: list[str]) -> Future:
        """Queue `segments`; the future gets their results (or the batch's error).

        Raises:
            QueueFullError: `max_queued_requests` requests are already waiting.
            ClosedError: `close` has been called.
        """
        job = _Job(key, segments)
        with self._changed:
            if self._closed:
                raise ClosedError("the server is shutting down")
            if len(self._queue) >= self._max_queued:
                raise QueueFullError(f"{len(self._queue)} requests are queued")
            self._queue.append(job)
            self._changed.notify()
        return job.future

    def queued(self) -> int:
        """Requests waiting for the model now."""
        with self._changed:
            return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, let the worker finish every queued one, then stop it."""
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            self._run(jobs)

    def _take(self) -> list[_Job] | None:
        """The next batch: the oldest job and the queued jobs with its key (None: closed)."""
        with self._changed:
            while not self._queue and not self._closed:
                self._changed.wait()
            if not self._queue:
                return None
            first = self._queue[0]
            deadline = first.arrival + self._max_wait_s
            while not self._closed and self._segments(first.key) < self._max_batch_segments:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._pop_batch(first.key)

    def _segments(self, key: Hashable) -> int:
        return sum(len(job.segments) for job in self._queue if job.key == key)

    def _pop_batch(self, key: Hashable) -> list[_Job]:
        """Remove and return the oldest jobs with `key` that fit the segment budget."""
        batch: list[_Job] = []
        size = 0
        for job in self._queue:
            if job.key != key:
                continue
            if batch and size + len(job.segments) > self._max_batch_segments:
                break
            batch.append(job)
            size += len(job.segments)
        for job in batch:
            self._queue.remove(job)
        return batch

    def _run(self, jobs: list[_Job]) -> None:
        """One call for all `jobs`; an error fails these jobs only."""
        # A request whose client went away (its future cancelled) is not translated.
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return
        segments = [segment for job in jobs for segment in job.segments]
        try:
            results = list(self._run_batch(jobs[0].key, segments))
            if len(results) != len(segments):
                raise RuntimeError(f"{len(results)} results for {len(segments)} segments")
        except Exception as err:  # reported to each request of this batch; the worker goes on
            for job in jobs:
                job.future.set_exception(err)
            return
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.segments)])
            start += len(job.segments)
