"""Batcher: requests that arrive together share one call, keys never mix, results keep order,
a failed call fails only its requests, the queue is bounded, close() drains."""

from __future__ import annotations

import threading

import pytest

from nmt.serve.batcher import Batcher, ClosedError, QueueFullError


class Recorder:
    """run_batch that records each call and answers "key:segment" (or raises on "BOOM")."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.gate = gate
        self.entered = threading.Event()

    def __call__(self, key: str, segments: list[str]) -> list[str]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((key, list(segments)))
        if "BOOM" in segments:
            raise RuntimeError("boom")
        return [f"{key}:{s}" for s in segments]


def make(run, wait_s=0.0, max_segments=100, max_queued=100) -> Batcher:
    return Batcher(
        run, max_wait_s=wait_s, max_batch_segments=max_segments, max_queued_requests=max_queued
    )


def test_queued_requests_share_one_call_per_key_in_order():
    gate = threading.Event()
    run = Recorder(gate)
    batcher = make(run)
    batcher.start()
    first = batcher.submit("a", ["0"])
    assert run.entered.wait(10)  # the worker is busy with `first`; the others queue up
    futures = [batcher.submit(key, [f"{i}x", f"{i}y"]) for i, key in enumerate("abab")]
    gate.set()
    assert first.result(10) == ["a:0"]
    assert [f.result(10) for f in futures] == [
        [f"{k}:{i}x", f"{k}:{i}y"] for i, k in enumerate("abab")
    ]
    batcher.close()
    assert run.calls == [
        ("a", ["0"]),
        ("a", ["0x", "0y", "2x", "2y"]),
        ("b", ["1x", "1y", "3x", "3y"]),
    ]


def test_first_request_waits_for_companions_until_the_batch_is_full():
    run = Recorder()
    batcher = make(run, wait_s=30, max_segments=3)  # only a full batch ends the wait in time
    batcher.start()
    futures = [batcher.submit("k", [str(i)]) for i in range(4)]
    assert [f.result(10) for f in futures[:3]] == [["k:0"], ["k:1"], ["k:2"]]
    batcher.close()  # closing ends the wait of the last one: it still gets translated
    assert futures[3].result(10) == ["k:3"]
    assert run.calls == [("k", ["0", "1", "2"]), ("k", ["3"])]


def test_a_request_larger_than_the_budget_runs_alone_and_whole():
    run = Recorder()
    batcher = make(run, max_segments=2)
    batcher.start()
    assert batcher.submit("k", ["1", "2", "3"]).result(10) == ["k:1", "k:2", "k:3"]
    batcher.close()


def test_a_failed_call_fails_only_its_requests():
    gate = threading.Event()
    run = Recorder(gate)
    batcher = make(run)
    batcher.start()
    busy = batcher.submit("a", ["0"])
    assert run.entered.wait(10)
    poisoned, same_batch, other_key = (
        batcher.submit("a", ["BOOM"]),
        batcher.submit("a", ["1"]),
        batcher.submit("b", ["2"]),
    )
    gate.set()
    assert busy.result(10) == ["a:0"]
    for future in (poisoned, same_batch):
        with pytest.raises(RuntimeError, match="boom"):
            future.result(10)
    assert other_key.result(10) == ["b:2"]
    assert batcher.submit("a", ["3"]).result(10) == ["a:3"]  # the worker goes on
    batcher.close()


def test_queue_is_bounded_and_close_drains_then_refuses():
    gate = threading.Event()
    run = Recorder(gate)
    batcher = make(run, max_queued=2)
    batcher.start()
    running = batcher.submit("k", ["0"])
    assert run.entered.wait(10)
    queued = [batcher.submit("k", ["1"]), batcher.submit("k", ["2"])]
    with pytest.raises(QueueFullError):
        batcher.submit("k", ["3"])
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert [running.result(0), *(f.result(0) for f in queued)] == [["k:0"], ["k:1"], ["k:2"]]
    with pytest.raises(ClosedError):
        batcher.submit("k", ["4"])


def test_a_cancelled_request_is_not_translated():
    gate = threading.Event()
    run = Recorder(gate)
    batcher = make(run)
    batcher.start()
    busy = batcher.submit("k", ["0"])
    assert run.entered.wait(10)
    gone = batcher.submit("k", ["gone"])
    assert gone.cancel()
    kept = batcher.submit("k", ["kept"])
    gate.set()
    assert busy.result(10) == ["k:0"] and kept.result(10) == ["k:kept"]
    batcher.close()
    assert run.calls == [("k", ["0"]), ("k", ["kept"])]
