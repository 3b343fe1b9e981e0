"""Typed Lightning Trainer settings (the `trainer` config group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainerConfig:
    """The `pl.Trainer` arguments the recipes set, typed so that a wrong value stops composition.

    Registered as the `base_trainer` schema; conf/trainer/*.yaml hold only what differs. The
    node stays open to Lightning's other Trainer arguments (`+trainer.profiler=simple`),
    which Lightning itself checks when the Trainer is built.
    """

    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = "cpu"
    devices: Any = 1  # a count, -1 (all), "auto", or a list of device indices
    num_nodes: int = 1
    strategy: Any = "auto"  # a name ("ddp") or a strategy object's config
    precision: str = "32-true"  # 32-true, bf16-mixed, 16-mixed
    max_epochs: int = -1
    max_steps: int = -1
    max_time: str | None = None  # e.g. 00:00:20:00 (DD:HH:MM:SS)
    val_check_interval: int | float = 500  # optimizer steps between validations (loss + BLEU)
    check_val_every_n_epoch: int | None = None  # None: validation is step-based, across epochs
    num_sanity_val_steps: int = 0
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    accumulate_grad_batches: int = 1
    log_every_n_steps: int = 50
    enable_progress_bar: bool = True  # progress on stderr (callbacks.progress_bar); false: none
    use_distributed_sampler: bool = False  # our TokenBudgetBatchSampler shards by rank itself
    deterministic: bool | str = False  # or "warn"
    benchmark: bool | None = False
    fast_dev_run: int | bool = False
    overfit_batches: int | float = 0.0
    default_root_dir: str | None = None
