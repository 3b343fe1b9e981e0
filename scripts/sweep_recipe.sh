#!/usr/bin/env bash
# The Hydra multirun sweep behind conf/experiment/bible_de_en.yaml (the 20-minute CPU recipe):
# each point trains for MINUTES (default 10) on Bible de-en, one run at a time, and the table at
# the end lists every point's overrides, updates and best validation BLEU (greedy, the number in
# its best checkpoint's name). Extra arguments are passed to every multirun.
#   bash scripts/sweep_recipe.sh [MINUTES=10] [hydra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MINUTES=${MINUTES:-10}
STAMP=$(date +%Y-%m-%d_%H-%M-%S)
ROOT=outputs/train/bible_de_en/sweep/$STAMP
common=(experiment=bible_de_en "trainer.max_time=00:00:$MINUTES:00" trainer.enable_progress_bar=false)
# depth x vocabulary: model=small (4+4 layers) vs small2 (2+2), 4k vs 8k joint pieces
"$PY" scripts/train.py -m "${common[@]}" "hydra.sweep.dir=$ROOT" \
  model=small,small2 data.spm.vocab_size=4000,8000 "$@" >/dev/null
for job in "$ROOT"/*/; do
  best=$(ls "$job"checkpoints/best-*.ckpt 2>/dev/null | head -1)
  printf '%s\t%s\n' "$(tr -d '\n' < "$job.hydra/overrides.yaml" | sed 's/- / /g')" "$(basename "${best:-none}")"
done | sort
