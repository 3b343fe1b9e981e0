"""Hydra entry point: see conf/translate.yaml and the README. Same as the `nmt-translate` console script."""

from nmt.cli import translate

if __name__ == "__main__":
    translate()
