"""Hydra entry point (conf/curves.yaml): valid BLEU per training minute of several runs."""

from nmt.cli import curves

if __name__ == "__main__":
    curves()
