"""Training side of `nmt-bench`: steady-state throughput, and a checkpoint to translate with."""

from __future__ import annotations

import contextlib
import copy
import io
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from nmt.data.batch import Batch
from nmt.data.datamodule import TranslationDataModule
from nmt.model.config import Seq2SeqConfig
from nmt.model.flops import train_flops_per_token
from nmt.tasks.data import build_datamodule
from nmt.tasks.train import build_module, train
from nmt.training.module import TranslationModule
from nmt.utils.bench import peak_rss_mb

BEST_PREFIX = "best_checkpoint: "
TRAIN_FLOPS_FORMULA = (
    "nmt.model.flops.train_flops_per_token(model, tgt_vocab_size, avg real src length, "
    "avg real tgt length incl. eos) x tgt_tok_per_s"
)


def train_phase(cfg: DictConfig, threads: int) -> dict[str, Any]:
    """Time forward/backward/clip/Adam steps on real training batches.

    The loop is what Lightning runs per step, without the Trainer: `training_step`, backward,
    gradient-norm clipping at `optim.grad_clip`, the optimizer and LR scheduler steps. Batch
    loading is inside the timed part. `bench.warmup_steps` steps run untimed first; timed
    steps then run until `bench.seconds` have elapsed (at least one).

    Args:
        cfg: the resolved bench config (data, model, optim, bench, seed).
        threads: intra-op threads.

    Returns:
        Throughput, the analytic model FLOP/s (`model_gflops`) and the process's peak RSS.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module = build_module(cfg, datamodule)
    module.train()
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    batches = _endless(datamodule)
    step = 0
    for step in range(cfg.bench.warmup_steps):
        train_step(module, next(batches), step, optimizer, scheduler)
    totals = {"steps": 0, "sentences": 0, "src_tokens": 0, "tgt_tokens": 0}
    start = time.perf_counter()
    while totals["steps"] == 0 or time.perf_counter() - start < cfg.bench.seconds:
        batch = next(batches)
        step += 1
        train_step(module, batch, step, optimizer, scheduler)
        totals["steps"] += 1
        totals["sentences"] += len(batch)
        totals["src_tokens"] += int(batch.src_lengths.sum())
        totals["tgt_tokens"] += batch.ntokens
    seconds = time.perf_counter() - start
    return _train_report(module, datamodule, totals, seconds)


def _endless(datamodule: TranslationDataModule) -> Iterator[Batch]:
    """Training batches, epoch after epoch."""
    loader = datamodule.train_dataloader()
    while True:
        yield from loader


def train_step(
    module: TranslationModule,
    batch: Batch,
    step: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    """One optimizer step, as Lightning's automatic optimization runs it."""
    with warnings.catch_warnings():
        # training_step calls self.log, which only warns without a Trainer.
        warnings.filterwarnings("ignore", message=".*self.log.*")
        loss = module.training_step(batch, step)
    loss.backward()
    if module.optim_config.grad_clip:
        torch.nn.utils.clip_grad_norm_(module.parameters(), module.optim_config.grad_clip)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _train_report(
    module: TranslationModule,
    datamodule: TranslationDataModule,
    totals: dict[str, int],
    seconds: float,
) -> dict[str, Any]:
    """Per-second rates and the model's FLOP/s over the timed steps."""
    avg_src = totals["src_tokens"] / totals["sentences"]
    avg_tgt = totals["tgt_tokens"] / totals["sentences"]
    config: Seq2SeqConfig = module.model_config
    flops_per_token = train_flops_per_token(config, datamodule.tgt_vocab_size, avg_src, avg_tgt)
    tgt_tok_per_s = totals["tgt_tokens"] / seconds
    return {
        **totals,
        "seconds": seconds,
        "steps_per_s": totals["steps"] / seconds,
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


def train_checkpoint(cfg: DictConfig, out_dir: Path, seconds: int) -> Path:
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
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):  # stdout carries the JSON report only
        train(train_cfg)
    sys.stderr.write(captured.getvalue())
    # The train task's contract: its last stdout line names the best checkpoint.
    found = [line for line in captured.getvalue().splitlines() if line.startswith(BEST_PREFIX)]
    if not found:
        raise RuntimeError(f"the train task printed no {BEST_PREFIX!r} line")
    return Path(found[-1].removeprefix(BEST_PREFIX))
