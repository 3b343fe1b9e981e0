"""Typed Lightning Trainer settings (the `trainer` config group)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


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
    precision: str = "32-true"  # 32-true, bf16-mixed, 16-mixed, or auto (`resolve_precision`)
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


def resolve_precision(precision: str, accelerator: str) -> tuple[str, str | None]:
    """The Lightning precision of `trainer.precision`, and why, when it was `auto`.

    `auto` is bf16-mixed where the device multiplies bf16 natively - a CPU with AMX tiles
    (Intel Xeon since Sapphire Rapids: several times its float32 matmul rate), a GPU with
    bf16 support - and 32-true elsewhere (without AMX or AVX-512 bf16, bf16 matmuls on a CPU
    are slower than float32 ones). Any other value is returned as it is.
    """
    if precision != "auto":
        return precision, None
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu:
        if torch.cpu._is_amx_tile_supported():
            return "bf16-mixed", "this CPU multiplies bf16 in AMX tiles"
        return "32-true", "this CPU has no AMX tiles for bf16"
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed", "this GPU supports bf16"
    return "32-true", f"no bf16 support found for accelerator={accelerator}"
