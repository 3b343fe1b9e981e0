"""Training side of `nmt-bench`: steady-state throughput, and a checkpoint to translate with.

The timed loop is the training step itself: a Lightning fit of the configured module with the
configured trainer (precision, gradient clipping, accumulation), so the module's non-finite
guard (`on_before_optimizer_step`) and the LR schedule run as in training. What a training run
does besides is switched off, and the report says so (`loop`).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from nmt.data.batch import Batch
from nmt.data.datamodule import TranslationDataModule
from nmt.model.config import Seq2SeqConfig
from nmt.model.flops import train_flops_per_token
from nmt.tasks.bench.process import peak_rss_mb
from nmt.tasks.data import DirectionSizes, build_datamodule
from nmt.tasks.train import build_module, train
from nmt.training.module import TranslationModule
from nmt.training.trainer_config import resolve_precision

TRAIN_FLOPS_FORMULA = (
    "nmt.model.flops.train_flops_per_token(model, tgt_vocab_size, avg real src length, "
    "avg real tgt length incl. eos) x tgt_tok_per_s"
)
LOOP = (
    "pytorch_lightning.Trainer.fit of the training config on one device (trainer.accelerator, "
    "trainer.precision, gradient clipping and accumulation, the non-finite guard and LR "
    "schedule as in training; batch loading timed); left out: validation, checkpoints, "
    "loggers, callbacks, the progress bar, and DDP (trainer.devices/num_nodes/strategy)"
)


class StepTimer(pl.Callback):
    """Time training batches after `warmup_steps` optimizer steps; stop after `seconds`.

    The clock starts when the last warm-up step ends (at the start of training without
    warm-up), so loading the next batch is timed. At least one batch is timed.

    Attributes:
        totals: batches, sentences, src_tokens and tgt_tokens of the timed batches.
        steps: optimizer steps taken during the timed batches.
        seconds: wall-clock time of the timed batches.
    """

    def __init__(self, warmup_steps: int, seconds: float) -> None:
        self.warmup_steps = warmup_steps
        self.limit = seconds
        self.totals = {"batches": 0, "sentences": 0, "src_tokens": 0, "tgt_tokens": 0}
        self.steps = 0
        self.seconds = 0.0
        self._start: float | None = None
        self._first_step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.warmup_steps == 0:
            self._begin(trainer)

    def _begin(self, trainer: pl.Trainer) -> None:
        self._start, self._first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Batch,
        batch_idx: int,
    ) -> None:
        if self._start is None:
            if trainer.global_step >= self.warmup_steps:
                self._begin(trainer)
            return
        self.totals["batches"] += 1
        self.totals["sentences"] += len(batch)
        self.totals["src_tokens"] += int(batch.src_lengths.sum())
        self.totals["tgt_tokens"] += batch.ntokens
        self.steps = trainer.global_step - self._first_step
        self.seconds = time.perf_counter() - self._start
        if self.seconds >= self.limit:
            trainer.should_stop = True


def fit_timed(
    cfg: DictConfig,
    module: TranslationModule,
    datamodule: TranslationDataModule,
    timer: StepTimer,
    max_epochs: int = -1,
) -> pl.Trainer:
    """Fit `module` with the configured trainer on one device, timed by `timer` (see LOOP)."""
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        precision=resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)[0],
        devices=1,
        num_nodes=1,
        strategy="auto",
        max_epochs=max_epochs,
        max_steps=-1,
        max_time=None,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        fast_dev_run=False,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    return trainer


def train_phase(cfg: DictConfig, threads: int, sizes: DirectionSizes | None) -> dict[str, Any]:
    """Time training steps on real training batches (see LOOP for what is included).

    `bench.warmup_steps` steps run untimed first; timed steps then run until `bench.seconds`
    have elapsed (at least one).

    Args:
        cfg: the resolved bench config (data, model, optim, trainer, bench, seed).
        threads: intra-op threads.
        sizes: the direction sizes of a multilingual corpus (`ensure_corpus`), or None.

    Returns:
        Throughput, the analytic model FLOP/s (`model_gflops`), the process's peak RSS, and
        what the loop ran on (`loop`, `accelerator`, `precision`, `skipped_updates`).
    """
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg, sizes)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_module(cfg, datamodule)
    timer = StepTimer(cfg.bench.warmup_steps, cfg.bench.seconds)
    trainer = fit_timed(cfg, module, datamodule, timer)
    report = _train_report(module, datamodule, timer)
    report.update(
        loop=LOOP,
        accelerator=type(trainer.accelerator).__name__,
        precision=str(trainer.precision),
        skipped_updates=module.nonfinite.skipped,
    )
    return report


def _train_report(
    module: TranslationModule, datamodule: TranslationDataModule, timer: StepTimer
) -> dict[str, Any]:
    """Per-second rates and the model's FLOP/s over the timed steps."""
    totals, seconds = timer.totals, timer.seconds
    avg_src = totals["src_tokens"] / totals["sentences"]
    avg_tgt = totals["tgt_tokens"] / totals["sentences"]
    config: Seq2SeqConfig = module.model_config
    flops_per_token = train_flops_per_token(config, datamodule.tgt_vocab_size, avg_src, avg_tgt)
    tgt_tok_per_s = totals["tgt_tokens"] / seconds
    return {
        "steps": timer.steps,
        **totals,
        "seconds": seconds,
        "steps_per_s": timer.steps / seconds,
        "tgt_tok_per_s": tgt_tok_per_s,
        "src_tok_per_s": totals["src_tokens"] / seconds,
        "avg_src_len": avg_src,
        "avg_tgt_len": avg_tgt,
        "parameters": sum(p.numel() for p in module.parameters()),
        "flops_per_tgt_token": flops_per_token,
        "model_gflops": flops_per_token * tgt_tok_per_s / 1e9,
        "flops_formula": TRAIN_FLOPS_FORMULA,
        "peak_rss_mb": peak_rss_mb(),
    }


def train_checkpoint(cfg: DictConfig, out_dir: Path, seconds: int) -> str:
    """Train the configured model for `seconds` with the train task; return its best checkpoint.

    Args:
        cfg: the (unresolved) bench config, which includes the whole training config.
        out_dir: the training run directory (checkpoints, logs).
        seconds: the Trainer's max_time.
    """
    train_cfg = copy.deepcopy(cfg)
    train_cfg.paths.output_dir = str(out_dir)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    train_cfg.trainer.max_time = f"00:{hours:02d}:{minutes:02d}:{secs:02d}"
    return train(train_cfg).best_checkpoint
