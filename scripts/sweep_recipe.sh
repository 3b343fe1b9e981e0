#!/usr/bin/env bash
# The Hydra multirun sweeps behind conf/experiment/bible_de_en.yaml (the 20-minute CPU recipe):
# every point trains experiment=bible_de_en for MINUTES (default 20) on Bible de-en, one run at
# a time (Hydra's basic launcher; keep the machine otherwise quiet), then prints one line per
# point (plateau exit, best valid BLEU and when) and plots valid BLEU per minute to curves.png.
#   bash scripts/sweep_recipe.sh model.layer_norm=false,true [more hydra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MINUTES=${MINUTES:-20}
ROOT=outputs/train/bible_de_en/sweep/$(date +%Y-%m-%d_%H-%M-%S)
mkdir -p "$ROOT"
"$PY" scripts/train.py -m experiment=bible_de_en "trainer.max_time=00:00:$MINUTES:00" \
  "hydra.sweep.dir=$ROOT" "$@" > "$ROOT/sweep.log" 2>&1
runs=$(ls -d "$ROOT"/*/ | paste -sd, -)
"$PY" scripts/plot_curves.py "runs=[$runs]" "output=$ROOT/curves.png" | tee "$ROOT/table.txt"
