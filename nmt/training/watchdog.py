"""End a training process whose progress has stopped (a hung, not a crashed, rank)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any

import pytorch_lightning as pl


class HangWatchdog(pl.Callback):
    """End this process when its training makes no progress for `timeout_s` seconds.

    A hung rank (a deadlock, stuck I/O, a dead network mount) raises nothing: under DDP the
    other ranks wait for it in their next collective until the process group's timeout
    (torch's default is 30 min, then a backend traceback), and a single process waits for
    ever. Every rank runs this watchdog, a thread fed by each training and validation batch
    and each checkpoint save. When nothing came for `timeout_s`, it prints one `error:` line
    on stderr and ends the process with status 1 (with `os._exit`: the stuck main thread
    cannot unwind). The ranks waiting for the hung one make no progress either, so their
    watchdogs end them too; Lightning's launching process also kills the ranks it started,
    and torchrun or srun end a job whose process exits non-zero.

    Args:
        timeout_s: seconds without progress that end the process; None: no watchdog.
    """

    def __init__(self, timeout_s: float | None = 1800.0) -> None:
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError(f"callbacks.hang_watchdog.timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.timeout_s is None:
            return
        self._beat()
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._watch, args=(trainer,), name="hang-watchdog", daemon=True
        )
        self._thread.start()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._disarm()

    def on_exception(self, trainer: pl.Trainer, *args: Any) -> None:
        self._disarm()

    def on_train_batch_start(self, *args: Any) -> None:
        self._beat()

    def on_train_batch_end(self, *args: Any) -> None:
        self._beat()

    def on_validation_batch_end(self, *args: Any) -> None:
        self._beat()

    def on_save_checkpoint(self, *args: Any) -> None:
        self._beat()

    def _beat(self) -> None:
        self._last = time.monotonic()

    def _disarm(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def _watch(self, trainer: pl.Trainer) -> None:
        assert self.timeout_s is not None
        poll = min(1.0, self.timeout_s / 10)
        while not self._stop.wait(poll):
            if time.monotonic() - self._last > self.timeout_s:
                self._end(trainer)

    def _end(self, trainer: pl.Trainer) -> None:
        print(
            f"error: rank {trainer.global_rank}: no training progress for {self.timeout_s:g} s "
            f"after step {trainer.global_step} (callbacks.hang_watchdog.timeout_s); ending the job",
            file=sys.stderr,
            flush=True,
        )
        launcher = trainer.strategy.launcher
        if launcher is not None:
            launcher.kill(signal.SIGKILL)  # the ranks this process started, if any
        os._exit(1)
