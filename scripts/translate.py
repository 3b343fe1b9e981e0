"""Hydra entry point (conf/translate.yaml); the `nmt-translate` console script is the same."""

from nmt.cli import translate

if __name__ == "__main__":
    translate()
