"""Hydra entry point: see conf/train.yaml and the README. Same as the `nmt-train` console script."""

from nmt.cli import train

if __name__ == "__main__":
    train()
