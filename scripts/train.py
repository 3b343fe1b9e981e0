"""Hydra entry point (conf/train.yaml); the `nmt-train` console script is the same."""

from nmt.cli import train

if __name__ == "__main__":
    train()
