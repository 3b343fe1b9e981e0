"""Hydra/OmegaConf glue shared by the tasks: resolvers and config conversion."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

ROOT_DIR = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT_DIR / "conf"


def run_dir(base: str, resume: bool) -> str:
    """A new timestamped run directory under `base`, or with `resume` the latest one there
    that holds checkpoints/last.ckpt (a new one when there is none: the task then says so)."""
    if resume:
        runs = sorted(p for p in Path(base).glob("*/checkpoints/last.ckpt"))
        if runs:
            return str(runs[-1].parent.parent)
    return str(Path(base) / datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))


if not OmegaConf.has_resolver("nmt_root"):
    OmegaConf.register_new_resolver("nmt_root", lambda: str(ROOT_DIR))
if not OmegaConf.has_resolver("nmt_run_dir"):
    OmegaConf.register_new_resolver("nmt_run_dir", run_dir)


def to_dict(node: DictConfig) -> dict[str, Any]:
    """Resolve a config node into plain Python containers."""
    return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
