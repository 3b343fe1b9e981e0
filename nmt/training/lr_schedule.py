"""Learning-rate schedules as multiplicative factors for `torch.optim.lr_scheduler.LambdaLR`.

The decay of NVIDIA's GNMT v2 recipe starts at a fraction of training. Training may be
bounded by steps or by wall-clock time (`trainer.max_time`), so the schedule takes the
training *progress* in [0, 1] from a callable that the training module provides
(max of steps done / max_steps and time spent / max_time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("gnmt", "inverse_sqrt", "constant")


@dataclass(frozen=True)
class ScheduleConfig:
    """The schedule keys of the `optim` config group."""

    schedule: str = "gnmt"
    warmup_steps: int = 200
    warmup_init: float = 0.01
    decay_start: float = 0.666
    decay_steps: int = 4
    decay_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 < self.warmup_init <= 1.0:
            raise ValueError(f"optim.warmup_init must be in (0, 1], got {self.warmup_init}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ValueError(f"optim.decay_start must be in [0, 1], got {self.decay_start}")
        if self.decay_steps < 0:
            raise ValueError(f"optim.decay_steps must be >= 0, got {self.decay_steps}")


def warmup_factor(step: int, cfg: ScheduleConfig) -> float:
    """Warm-up factor: exponential from `warmup_init` to 1 (gnmt), linear otherwise."""
    if step >= cfg.warmup_steps:
        return 1.0
    if cfg.schedule == "gnmt":
        # NVIDIA GNMT v2: lr * warmup_init ** ((warmup - step) / warmup).
        return cfg.warmup_init ** ((cfg.warmup_steps - step) / cfg.warmup_steps)
    return (step + 1) / cfg.warmup_steps


def decay_factor(step: int, progress: float, cfg: ScheduleConfig) -> float:
    """Decay factor after warm-up, for a training `progress` in [0, 1]."""
    if cfg.schedule == "inverse_sqrt":
        return math.sqrt(max(cfg.warmup_steps, 1) / max(step, cfg.warmup_steps, 1))
    if cfg.schedule == "constant" or cfg.decay_steps == 0 or progress < cfg.decay_start:
        return 1.0
    # Equal intervals between decay_start and the end; the first decay at decay_start.
    interval = (1.0 - cfg.decay_start) / cfg.decay_steps
    done = 1 + int((progress - cfg.decay_start) / interval) if interval > 0 else cfg.decay_steps
    return cfg.decay_factor ** min(done, cfg.decay_steps)


def lr_factor(step: int, progress: float, cfg: ScheduleConfig) -> float:
    """The factor that multiplies the base learning rate at optimizer step `step`."""
    return warmup_factor(step, cfg) * decay_factor(step, progress, cfg)


def build_scheduler(
    optimizer: Optimizer, cfg: ScheduleConfig, progress: Callable[[], float]
) -> LambdaLR:
    """A LambdaLR stepping once per optimizer step; `progress()` is read at each step."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, progress(), cfg))
