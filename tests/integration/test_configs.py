"""Every config file composes, and its model/optim/search/data values pass their schemas."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from nmt.model.config import Seq2SeqConfig
from nmt.search.config import SearchConfig
from nmt.tasks.data import data_config
from nmt.tasks.hydra_setup import CONF_DIR, to_dict
from nmt.training.optim_config import OptimConfig


def names(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def validate_train(cfg) -> None:
    """Build every typed config the train task builds; resolve everything else."""
    Seq2SeqConfig.from_dict(to_dict(cfg.model))
    OptimConfig(**to_dict(cfg.optim))
    SearchConfig(**to_dict(cfg.val.search))
    data_config(cfg)
    for key in ("trainer", "callbacks", "logger", "corpus", "val"):
        OmegaConf.to_container(cfg[key], resolve=True)


@pytest.mark.parametrize("group", ["data", "model", "optim", "trainer", "callbacks", "logger"])
def test_every_train_group_option_composes(compose_cfg, group):
    options = names(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        overrides = [f"{group}={option}"]
        if option == "text":
            overrides += [
                f"data.{k}=/x/{k}" for k in ("train_src", "train_tgt", "valid_src", "valid_tgt")
            ]
        validate_train(compose_cfg("train", overrides))


@pytest.mark.parametrize("experiment", names("experiment"))
def test_every_experiment_composes(compose_cfg, experiment):
    validate_train(compose_cfg("train", [f"experiment={experiment}"]))


@pytest.mark.parametrize("debug", names("debug"))
def test_every_debug_option_composes(compose_cfg, debug):
    validate_train(compose_cfg("train", ["experiment=smoke", f"debug={debug}"]))


@pytest.mark.parametrize("search", names("search"))
def test_every_search_option_composes(compose_cfg, search):
    cfg = compose_cfg("translate", [f"search={search}", "ckpt=x.ckpt"])
    SearchConfig(**to_dict(cfg.search))


@pytest.mark.parametrize("name", [p.stem for p in CONF_DIR.glob("*.yaml")])
def test_every_primary_config_composes(compose_cfg, name):
    cfg = compose_cfg(name)
    assert cfg.task_name == name.replace("_data", "")


def test_unknown_model_key_is_named(compose_cfg):
    cfg = compose_cfg("train", ["+model.encoder_layers=8"])
    with pytest.raises(ValueError, match="model.encoder_layers"):
        Seq2SeqConfig.from_dict(to_dict(cfg.model))


def test_gnmt8_has_eight_layers(compose_cfg):
    cfg = Seq2SeqConfig.from_dict(to_dict(compose_cfg("train", ["model=gnmt8"]).model))
    assert (cfg.encoder.num_layers, cfg.decoder.num_layers, cfg.decoder.hidden_size) == (8, 8, 1024)
