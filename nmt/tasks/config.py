"""Hydra/OmegaConf glue shared by the tasks: resolvers and config conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

ROOT_DIR = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT_DIR / "conf"

if not OmegaConf.has_resolver("nmt_root"):
    OmegaConf.register_new_resolver("nmt_root", lambda: str(ROOT_DIR))


def to_dict(node: DictConfig) -> dict[str, Any]:
    """Resolve a config node into plain Python containers."""
    return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
