"""Tasks: plain functions of a Hydra config, called by scripts/ and the console scripts.

Each task `nmt.tasks.<name>.<name>(cfg)` lives in its own module, imported only when it
runs, so `translate` does not pay for importing Lightning.
"""

from nmt.tasks import hydra_setup as _hydra_setup  # noqa: F401  (registers the resolvers)
