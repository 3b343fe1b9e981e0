"""Training progress on stderr: tqdm frames on a terminal, one plain line per validation otherwise.

Lightning's own bar draws its `\\r` frames on stdout, so a run piped to a file or a CI log
buries the few lines that matter there (`best_checkpoint: PATH`) in thousands of frames.
Here stdout carries results only; progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ProgressBar, Timer, TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm


def progress_bar(enabled: bool = True, refresh_rate: int = 1) -> pl.Callback:
    """The progress callback for this process: frames when stderr is a terminal, else lines.

    Args:
        enabled: `trainer.enable_progress_bar`. When false, a plain `Callback` that does
            nothing is returned, because Lightning refuses a progress bar callback then.
        refresh_rate: steps between two frames of the terminal bar.
    """
    if not enabled:
        return pl.Callback()
    if sys.stderr.isatty():
        return StderrTQDMProgressBar(refresh_rate=refresh_rate)
    return LineProgressBar()


class StderrTQDMProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, drawn on stderr instead of stdout (its bars use the sys.stdout
    of the moment they are made)."""

    def init_sanity_tqdm(self) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_sanity_tqdm()

    def init_train_tqdm(self) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_train_tqdm()

    def init_validation_tqdm(self) -> Tqdm:
        with contextlib.redirect_stdout(sys.stderr):
            return super().init_validation_tqdm()


class LineProgressBar(ProgressBar):
    """Print one line on stderr after each validation, for logs and pipes.

    The line has the optimizer step (of the total when bounded), the progress-bar metrics
    (those logged with `prog_bar=True`: train/loss, val/bleu, train/tgt_tok_per_s), the time
    since this fit started and, while fitting, an estimate of the time left: the smaller of
    `trainer.max_time`'s remainder and the remaining steps at the rate so far.
    """

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True
        self._start: float | None = None
        self._start_step = 0

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._enabled and not trainer.sanity_checking:
            sys.stderr.write(self.line(trainer, pl_module) + "\n")
            sys.stderr.flush()

    def line(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> str:
        """`step 500/2000  train/loss 4.123  val/bleu 1.23  ...  elapsed 0:05:12  left 0:14:48`."""
        step = trainer.global_step
        parts = [f"step {step}" + (f"/{trainer.max_steps}" if trainer.max_steps > 0 else "")]
        metrics = self.get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        parts += [f"{name} {_number(value)}" for name, value in metrics.items()]
        if self._start is not None:
            elapsed = time.monotonic() - self._start
            parts.append(f"elapsed {_duration(elapsed)}")
            fitting = trainer.state.fn == "fit"  # not the final trainer.validate()
            left = _time_left(trainer, step - self._start_step, elapsed) if fitting else None
            if left is not None:
                parts.append(f"left {_duration(left)}")
        return "  ".join(parts)


def _time_left(trainer: pl.Trainer, steps_done: int, elapsed: float) -> float | None:
    """Seconds until the fit ends by max_time or by its step budget (None: unbounded)."""
    bounds = [
        left
        for callback in trainer.callbacks
        if isinstance(callback, Timer) and (left := callback.time_remaining("train")) is not None
    ]
    total = trainer.estimated_stepping_batches
    if steps_done > 0 and total != float("inf"):
        bounds.append((total - trainer.global_step) * elapsed / steps_done)
    return max(0.0, min(bounds)) if bounds else None


def _number(value: Any) -> str:
    """Four significant digits, whole numbers from 1000 on (tok/s)."""
    if isinstance(value, float | int) and abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}" if isinstance(value, float | int) else str(value)


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))
