"""Entry points: `scripts/<name>.py` and the console scripts (`nmt-train`, ...) call these."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

import hydra
from omegaconf import DictConfig

from nmt.tasks.config import CONF_DIR


def _entry(config_name: str, task_name: str) -> Callable[[], Any]:
    """A @hydra.main entry running `nmt.tasks.<task_name>` on the composed config."""

    def run(cfg: DictConfig) -> Any:
        try:
            task = getattr(import_module(f"nmt.tasks.{task_name}"), task_name)
            return task(cfg)
        except ValueError as err:
            # User and data errors: one line naming the file/line/key, non-zero exit.
            raise SystemExit(f"error: {err}") from None

    run.__name__ = task_name
    return hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(run)


prepare = _entry("prepare", "prepare")
train = _entry("train", "train")
translate = _entry("translate", "translate")
evaluate = _entry("evaluate", "evaluate")
bench = _entry("bench", "bench")
average = _entry("average", "average")
