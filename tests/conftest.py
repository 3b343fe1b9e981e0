"""Shared fixtures: Hydra composition with every output under tmp, and one trained tiny model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from nmt.tasks.hydra_setup import CONF_DIR, ROOT_DIR

SAMPLE_DIR = ROOT_DIR / "data" / "sample"
Compose = Callable[..., DictConfig]


def compose_config(
    name: str, root: Path, overrides: list[str] | tuple[str, ...] = ()
) -> DictConfig:
    """Compose conf/<name>.yaml with data, logs and outputs redirected under `root`."""
    paths = [
        f"paths.data_dir={root / 'data'}",
        f"paths.log_dir={root / 'logs'}",
        f"paths.output_dir={root / 'out'}",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=[*paths, *overrides])


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Compose:
    """compose_cfg("train", ["experiment=smoke", ...]) -> a config writing under tmp_path."""
    return lambda name, overrides=(): compose_config(name, tmp_path, overrides)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train the smoke experiment (tiny model, committed sample) once per session."""
    from nmt.tasks.train import train

    root = tmp_path_factory.mktemp("tiny_run")
    cfg = compose_config(
        "train",
        root,
        ["experiment=smoke", "trainer.max_steps=60", "trainer.val_check_interval=30"],
    )
    train(cfg)
    ckpt = root / "out" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    return ckpt
