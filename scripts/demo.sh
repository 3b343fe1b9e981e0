#!/usr/bin/env bash
# The README demo: Bible de-en -> train model=small for a bounded time -> translate the
# test set with beam 5 -> BLEU. Run from the repository root with the venv's python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MAX_TIME=${MAX_TIME:-00:00:10:00}
$PY scripts/prepare_data.py
LOG=$(mktemp)
$PY scripts/train.py experiment=bible_de_en trainer.max_time="$MAX_TIME" | tee "$LOG"
CKPT=$(grep "^best_checkpoint: " "$LOG" | tail -1 | cut -d" " -f2-)
OUT=$(dirname "$(dirname "$CKPT")")
$PY scripts/translate.py ckpt="$CKPT" input=data/bible/de-en/test.de output="$OUT/test.hyp.en" search.beam_size=5
for n in 2 400 900; do  # a few test verses: source, reference, this model's translation
  printf 'source:      %s\nreference:   %s\ntranslation: %s\n\n' "$(sed -n "${n}p" data/bible/de-en/test.de)" \
    "$(sed -n "${n}p" data/bible/de-en/test.en)" "$(sed -n "${n}p" "$OUT/test.hyp.en")"
done
$PY scripts/evaluate.py hyp="$OUT/test.hyp.en" ref=data/bible/de-en/test.en output_json="$OUT/test.bleu.json"
