"""Printing that happens once per job, on the global rank 0 process only."""

from __future__ import annotations

import os
import sys


def is_rank_zero() -> bool:
    """True unless the environment names this process a non-zero rank (DDP, SLURM, torchrun)."""
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID"))


def rank_zero_print(message: str) -> None:
    """Print to stdout from rank 0 only, flushing so the line order is kept."""
    if is_rank_zero():
        print(message, flush=True)
        sys.stdout.flush()
