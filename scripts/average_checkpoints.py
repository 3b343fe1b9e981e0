"""Hydra entry point (conf/average.yaml); the `nmt-average` console script is the same."""

from nmt.cli import average

if __name__ == "__main__":
    average()
