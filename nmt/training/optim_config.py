"""Typed optimiser settings (the `optim` config group)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nmt.training.lr_schedule import ScheduleConfig


@dataclass
class OptimConfig:
    """Adam, label smoothing, gradient clipping and the learning-rate schedule."""

    lr: float = 2.0e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1.0e-8
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    grad_clip: float = 5.0
    schedule: str = "gnmt"
    warmup_steps: int = 200
    warmup_init: float = 0.01
    decay_start: float = 0.666
    decay_steps: int = 4
    decay_factor: float = 0.5

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"optim.betas must be two values in [0, 1), got {self.betas}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"optim.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.grad_clip < 0:
            raise ValueError(f"optim.grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        self.schedule_config()  # validates the schedule keys

    def schedule_config(self) -> ScheduleConfig:
        return ScheduleConfig(
            schedule=self.schedule,
            warmup_steps=self.warmup_steps,
            warmup_init=self.warmup_init,
            decay_start=self.decay_start,
            decay_steps=self.decay_steps,
            decay_factor=self.decay_factor,
        )
