"""Hydra entry point (conf/serve.yaml); the `nmt-serve` console script is the same."""

from nmt.cli import serve

if __name__ == "__main__":
    serve()
