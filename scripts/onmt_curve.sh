#!/usr/bin/env bash
# OpenNMT-py's valid BLEU against training minutes, for `nmt-curves` beside nmt's runs: train the
# peer recipe of ../shared/peers/onmt for BUDGET_S seconds keeping every checkpoint (one each
# SAVE_STEPS steps), then decode the first 500 valid verses greedily with each (as nmt's
# validation does) and write RUN/csv/metrics.csv with step, time/elapsed_min (the checkpoint's
# write time after the start) and val/bleu (sacrebleu 13a). Needs setup_venvs.sh + prep_data.sh.
# Usage: BUDGET_S=1200 SAVE_STEPS=50 bash scripts/onmt_curve.sh [RUN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
source ../shared/peers/env.sh
RUN=$(realpath -m "${1:-$WORK/runs/onmt_curve}")
V="$VENVS/onmt/bin"
mkdir -p "$RUN/csv"
sed -e "s#@WORK@#$WORK#g" -e "s#@DATA_SP@#$DATA_SP#g" -e "s#@RUN@#$RUN#g" \
    -e "s#@SAVE_STEPS@#${SAVE_STEPS:-50}#g" -e "s#@VALID_STEPS@#${VALID_STEPS:-150}#g" \
    -e "s#^keep_checkpoint: .*#keep_checkpoint: -1#" "$PEERS_DIR/onmt/train.yaml.in" > "$RUN/train.yaml"
if [[ "${SKIP_TRAIN:-0}" != 1 ]]; then
  rm -f "$RUN"/model_step_*.pt
  date +%s.%N > "$RUN/train.start"
  timeout -s INT -k 60 "$BUDGET_S" "$V/onmt_train" -config "$RUN/train.yaml" > "$RUN/train.stdout" 2>&1 || true
fi
head -n 500 "$DATA_SP/valid.sp.de" > "$RUN/valid500.sp.de"
head -n 500 "$DATA_RAW/valid.en" > "$RUN/valid500.en"
echo "step,time/elapsed_min,val/bleu" > "$RUN/csv/metrics.csv.tmp"
for ckpt in $(ls "$RUN"/model_step_*.pt | sort -V); do
  step=$(basename "$ckpt" .pt); step=${step#model_step_}
  "$V/onmt_translate" -model "$ckpt" -src "$RUN/valid500.sp.de" -output "$RUN/valid.$step.sp" \
      -gpu -1 -batch_size 32 -batch_type sents -beam_size 1 > /dev/null 2>&1
  "$VENVS/common/bin/python" - "$ckpt" "$RUN" "$step" >> "$RUN/csv/metrics.csv.tmp" <<'PYEOF'
import os, sys, sacrebleu, sentencepiece as spm
ckpt, run, step = sys.argv[1:]
sp = spm.SentencePieceProcessor(model_file=os.environ["SPM_PREFIX"] + ".model")
hyps = [sp.decode(line.split()) for line in open(f"{run}/valid.{step}.sp", encoding="utf-8")]
refs = [line.rstrip("\n") for line in open(f"{run}/valid500.en", encoding="utf-8")]
minutes = (os.path.getmtime(ckpt) - float(open(f"{run}/train.start").read())) / 60
print(f"{step},{minutes:.2f},{sacrebleu.corpus_bleu(hyps, [refs]).score:.2f}")
PYEOF
done
mv "$RUN/csv/metrics.csv.tmp" "$RUN/csv/metrics.csv"
cat "$RUN/csv/metrics.csv"
