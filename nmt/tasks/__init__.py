"""Tasks: plain functions of a Hydra config, called by scripts/ and the console scripts."""

from nmt.tasks import config as _config  # noqa: F401  (registers the resolvers)
from nmt.tasks.prepare import prepare

__all__ = ["prepare"]
