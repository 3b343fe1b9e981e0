"""Training callbacks that Lightning does not provide."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info


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


class BestCheckpointReport(pl.Callback):
    """Print where the best and last checkpoints are when training ends."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        callback = trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            rank_zero_info(
                f"best checkpoint (val/bleu {callback.best_model_score}): "
                f"{callback.best_model_path}"
            )
