"""Training callbacks that Lightning does not provide."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.utilities import rank_zero_info
from pytorch_lightning.utilities.exceptions import SIGTERMException


class TokenThroughput(pl.Callback):
    """Log target tokens per second (all ranks together) as `train/tgt_tok_per_s`.

    Tokens are counted from `Batch.ntokens` between logging points; the first
    `skip_steps` optimizer steps (warm-up of allocators and threads) are not timed.

    Args:
        log_every_n_steps: steps between two measurements.
        skip_steps: steps ignored at the start of each fit.
    """

    def __init__(self, log_every_n_steps: int = 50, skip_steps: int = 10) -> None:
        self.log_every_n_steps = log_every_n_steps
        self.skip_steps = skip_steps
        self._tokens = 0
        self._start: float | None = None
        self._steps = 0

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._start is None and self._steps >= self.skip_steps:
            self._start = time.perf_counter()
            self._tokens = 0

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        *args: Any,
    ) -> None:
        self._steps += 1
        if self._start is None:
            return
        self._tokens += int(batch.ntokens) * trainer.world_size
        if self._steps % self.log_every_n_steps == 0:
            elapsed = time.perf_counter() - self._start
            pl_module.log("train/tgt_tok_per_s", self._tokens / elapsed, prog_bar=True)
            self._start, self._tokens = time.perf_counter(), 0

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Validation time is not training time: restart the clock after it.
        self._start = None if self._steps < self.skip_steps else time.perf_counter()
        self._tokens = 0


def early_stopping(
    enabled: bool, monitor: str, mode: str, patience: int, min_delta: float
) -> pl.Callback:
    """Lightning's EarlyStopping, checked at every validation, or a no-op when not `enabled`.

    The fit stops after `patience` validations in a row without an improvement of more than
    `min_delta` in `monitor`. Its count and best score are saved in every checkpoint, so a
    resumed run carries on counting where the interrupted one was.
    """
    if not enabled:
        return pl.Callback()
    return EarlyStopping(
        monitor=monitor,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        check_on_train_epoch_end=False,  # validation is step-based: decide after each one
        strict=True,  # a misspelt monitor stops the run instead of never stopping it
        verbose=True,
    )


def last_checkpoint_path(trainer: pl.Trainer) -> Path:
    """`last.ckpt` of the trainer's (first) ModelCheckpoint: what `resume=true` continues."""
    callback = trainer.checkpoint_callback
    if callback is None or callback.dirpath is None:
        raise ValueError("checkpointing is off (no ModelCheckpoint with a dirpath)")
    return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"


class WallClock(pl.Callback):
    """Log the minutes since this fit started as `time/elapsed_min` at every validation.

    The clock includes validation time, as `trainer.max_time` does, so the logged curve of
    `val/bleu` against `time/elapsed_min` is quality per minute of the training budget. A
    resumed run starts its clock again.
    """

    def __init__(self) -> None:
        self._start: float | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is not None and trainer.state.fn == "fit":
            pl_module.log("time/elapsed_min", (time.monotonic() - self._start) / 60.0)


class CheckpointOnSignal(pl.Callback):
    """On SIGTERM or SIGINT, finish the running batch, save `last.ckpt`, and stop.

    Lightning handles SIGTERM itself: the handler sets a flag (shared by the DDP ranks) and
    the loop raises `SIGTERMException` once the running batch is done; this callback saves
    the checkpoint in `on_exception`. SIGINT (Ctrl+C) is routed to the same handler, because
    Lightning's own path, a KeyboardInterrupt wherever it lands (possibly halfway through an
    optimizer step), leaves no consistent state to save. Under DDP, rank 0's handler also
    forwards the signal to the other ranks, so a Ctrl+C that reaches every rank arrives twice
    there: a second SIGINT therefore does not abort (SIGQUIT or SIGKILL do). An ignored
    SIGINT (`nohup`, background jobs) stays ignored.

    A signal during validation stops it after the running validation batch (a scheduler's
    grace period may be shorter than a validation). The checkpoint then holds the training
    state of the step just taken, as a signal during training gives, and records the
    validation as not yet begun: the resumed run validates that step again in full (the
    partial sums of the interrupted validation are not saved), then trains on.
    """

    def __init__(self) -> None:
        self._sigint: Any = None
        self._interrupted_validation = False

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sigterm = signal.getsignal(signal.SIGTERM)
        if (
            threading.current_thread() is not threading.main_thread()
            or not callable(sigterm)
            or signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        ):
            return
        self._sigint = signal.signal(signal.SIGINT, sigterm)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._restore_sigint()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            path = last_checkpoint_path(trainer)
            self._interrupted_validation = trainer.validating
            try:
                trainer.save_checkpoint(path)
            finally:
                self._interrupted_validation = False
            rank_zero_info(f"signal received: saved step {trainer.global_step} to {path}")
        self._restore_sigint()

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if self._interrupted_validation:
            _rewind_validation(
                checkpoint["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]
            )

    def _restore_sigint(self) -> None:
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
            self._sigint = None


def _rewind_validation(progress: dict[str, Any]) -> None:
    """Mark the running validation in a saved loop state as stopped in its first batch.

    `progress` is the validation loop's batch progress (Lightning's `_BatchProgress` state:
    `total` over the fit, `current` for this validation, each with ready/started/processed/
    completed counts). A validation stopped in its first batch is what Lightning restarts
    from the beginning when the fit resumes, before training goes on.
    """
    total, current = progress["total"], progress["current"]
    before = total["completed"] - current["completed"]  # batches of earlier validations
    total.update(ready=before + 1, started=before + 1, processed=before, completed=before)
    current.update(ready=1, started=1, processed=0, completed=0)
    progress["is_last_batch"] = False
