"""Score translations: python scripts/evaluate.py hyp=FILE ref=FILE (or ckpt=PATH src=FILE)."""

from nmt.cli import evaluate

if __name__ == "__main__":
    evaluate()
