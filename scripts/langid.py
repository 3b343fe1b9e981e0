"""Hydra entry point (conf/langid.yaml): the language of each line of a file, as shares."""

from nmt.cli import langid

if __name__ == "__main__":
    langid()
