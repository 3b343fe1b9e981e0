"""`average` task: write the parameter average of several checkpoints as a new checkpoint."""

from __future__ import annotations

import torch
from omegaconf import DictConfig

from nmt.training.averaging import average_checkpoints, select_checkpoints
from nmt.utils.io import atomic_open


def average(cfg: DictConfig) -> None:
    """Average `ckpts` (or the `last_n` of `dir`) into `output`, atomically."""
    paths = select_checkpoints(list(cfg.ckpts or []), cfg.dir, cfg.last_n)
    averaged = average_checkpoints(paths)
    with atomic_open(cfg.output, "wb") as handle:
        torch.save(averaged, handle)
    print(f"averaged {len(paths)} checkpoints -> {cfg.output}")
