"""Test-only callbacks that inject faults into training runs, added with `+callbacks.NAME=...`.

They live under tests/ so that production code carries no fault hooks; a training subprocess
imports them through `_target_: tests.integration.fault_hooks.<Class>` (the repository root
on PYTHONPATH).
"""

from __future__ import annotations

import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


class Pace(pl.Callback):
    """Sleep after every optimizer step, so that a test can kill the run part-way."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        time.sleep(self.seconds)


class WaitForSignal(pl.Callback):
    """After optimizer step `step`, touch `ready`, then wait until SIGTERM/SIGINT is flagged."""

    def __init__(self, step: int, ready: str, timeout_s: float = 120.0) -> None:
        self.step = step
        self.ready = Path(ready)
        self.timeout_s = timeout_s

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            _wait_for_signal(trainer, self.ready, self.timeout_s)


def _wait_for_signal(trainer: pl.Trainer, ready: Path, timeout_s: float) -> None:
    """Touch `ready`, then sleep until the trainer has flagged SIGTERM/SIGINT."""
    ready.touch()
    deadline = time.monotonic() + timeout_s
    while not trainer.received_sigterm:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no signal within {timeout_s} s")
        time.sleep(0.01)


class FailOnRank(pl.Callback):
    """Raise on one DDP rank after optimizer step `step`."""

    def __init__(self, rank: int, step: int) -> None:
        self.rank = rank
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            raise RuntimeError(f"injected failure on rank {self.rank} at step {self.step}")


class HangOnRank(pl.Callback):
    """Hang (sleep, raise nothing) on one DDP rank after optimizer step `step`."""

    def __init__(self, rank: int, step: int, seconds: float = 600.0) -> None:
        self.rank = rank
        self.step = step
        self.seconds = seconds

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_rank == self.rank and trainer.global_step == self.step:
            time.sleep(self.seconds)


class FileSizeLimit(pl.Callback):
    """From optimizer step `step` on, no file of this process may grow past `max_bytes`.

    RLIMIT_FSIZE makes a write past the limit fail with EFBIG (SIGXFSZ ignored), as a full
    disk fails with ENOSPC; it applies to root too, unlike a read-only directory.
    """

    def __init__(self, step: int, max_bytes: int) -> None:
        self.step = step
        self.max_bytes = max_bytes

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.max_bytes, hard))


class WaitForSignalInValidation(pl.Callback):
    """After validation batch `batch` of the validation at optimizer step `step`, touch
    `ready`, then wait until SIGTERM/SIGINT is flagged (the signal lands mid-validation)."""

    def __init__(self, step: int, ready: str, batch: int = 0, timeout_s: float = 120.0) -> None:
        self.step = step
        self.batch = batch
        self.ready = Path(ready)
        self.timeout_s = timeout_s

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        *args: Any,
    ) -> None:
        if trainer.sanity_checking or trainer.global_step != self.step or batch_idx != self.batch:
            return
        _wait_for_signal(trainer, self.ready, self.timeout_s)
