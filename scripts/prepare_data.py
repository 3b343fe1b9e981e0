"""Prepare a Bible language pair: python scripts/prepare_data.py [corpus.src=l corpus.tgt=4 ...]."""

from nmt.cli import prepare

if __name__ == "__main__":
    prepare()
