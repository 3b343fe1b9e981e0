"""Console scripts (`nmt-train`, ...): the same Hydra entry points as scripts/*.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hydra

from nmt import tasks
from nmt.tasks.config import CONF_DIR


def _entry(config_name: str, task: Callable[[Any], Any]) -> Callable[[], Any]:
    return hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(task)


prepare = _entry("prepare", tasks.prepare)
