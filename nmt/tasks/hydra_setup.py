"""Hydra/OmegaConf glue shared by the tasks: resolvers, the ConfigStore schemas, conversion."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nmt.data.data_config import DataConfig
from nmt.model.config import Seq2SeqConfig
from nmt.search.strategy import SearchConfig
from nmt.tasks.translator_setup import TranslatorConfig
from nmt.training.optim_config import OptimConfig
from nmt.training.trainer_config import TrainerConfig

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


def schema_node(schema: type) -> DictConfig:
    """The dataclass `schema` as a typed, writable config node (its defaults, types, keys)."""
    node = OmegaConf.structured(schema)
    OmegaConf.set_readonly(node, False)  # frozen dataclasses give read-only nodes
    return node


def register_schemas() -> None:
    """Store the schemas the config groups extend (`defaults: [base_model, _self_]`).

    model/optim/search/data options are then typed at composition: their yaml files hold only
    what differs from the dataclass defaults, an unknown key or a value of the wrong type
    stops composition. The translator keys sit at the top level of translate/evaluate.yaml,
    whose other keys a typed root would reject: they get the defaults of `TranslatorConfig`
    as plain values, checked by `TranslatorConfig.from_config`.
    """
    store = ConfigStore.instance()
    for group, schema in (
        ("model", Seq2SeqConfig),
        ("optim", OptimConfig),
        ("search", SearchConfig),
        ("data", DataConfig),
    ):
        store.store(group=group, name=f"base_{group}", node=schema_node(schema))
    trainer = schema_node(TrainerConfig)
    OmegaConf.set_struct(trainer, False)  # open to Lightning's other Trainer arguments
    store.store(group="trainer", name="base_trainer", node=trainer)
    defaults = dataclasses.asdict(TranslatorConfig())
    store.store(group="translator", name="base_translator", node=defaults, package="_global_")


register_schemas()


def to_dict(node: DictConfig) -> dict[str, Any]:
    """Resolve a config node into plain Python containers."""
    return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


def typed_dict(node: DictConfig, schema: type, key: str) -> dict[str, Any]:
    """Resolve the config node `key` and check it against the dataclass `schema`.

    Unknown keys (`+model.encoder.hiden_size=3`) and values that do not convert to the
    annotated type (`optim.lr=abc`) raise ValueError naming the full key; values are
    converted where OmegaConf can ("3" for an int). Range checks stay in the dataclass.
    """
    try:
        return to_dict(OmegaConf.merge(schema_node(schema), to_dict(node)))
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        raise ValueError(f"{key}.{err.full_key}: {reason}") from None
