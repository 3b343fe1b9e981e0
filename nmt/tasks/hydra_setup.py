"""Hydra/OmegaConf glue shared by the tasks: resolvers and config conversion."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

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


def typed_dict(node: DictConfig, schema: type, key: str) -> dict[str, Any]:
    """Resolve the config node `key` and check it against the dataclass `schema`.

    Unknown keys (`+model.encoder.hiden_size=3`) and values that do not convert to the
    annotated type (`optim.lr=abc`) raise ValueError naming the full key; values are
    converted where OmegaConf can ("3" for an int). Range checks stay in the dataclass.
    """
    base = OmegaConf.structured(schema)
    OmegaConf.set_readonly(base, False)  # frozen dataclasses give read-only nodes
    try:
        return to_dict(OmegaConf.merge(base, to_dict(node)))
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        raise ValueError(f"{key}.{err.full_key}: {reason}") from None
