"""Hydra entry point (conf/bench.yaml); the `nmt-bench` console script is the same."""

from nmt.cli import bench

if __name__ == "__main__":
    bench()
