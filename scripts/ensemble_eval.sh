#!/usr/bin/env bash
# Ensembles vs checkpoint averaging on one test set: test BLEU (beam 5, sacrebleu defaults: 13a,
# cased, via scripts/evaluate.py) and decode speed (scripts/bench.py task=translate: sentences/s
# and target tokens/s, beam 5, fp32 with the checkpoints' shortlist, as translate decodes) of
#   best_a     the best checkpoint of run A        best_b     the best checkpoint of run B
#   ens_lastN  the ensemble of A's last N checkpoints
#   avg_lastN  the parameter average of the same N checkpoints (scripts/average_checkpoints.py)
#   ens_ab     the ensemble of best_a and best_b (two independently seeded runs)
#   bash scripts/ensemble_eval.sh RUN_A RUN_B [N=5] [OUT=RUN_A/ensemble_eval]
# RUN_A/RUN_B: training run directories whose checkpoints/ keep every validation's checkpoint:
# train them with callbacks.model_checkpoint.save_top_k=-1 (the default keeps only the best).
# "Last N" = the N checkpoints with the highest steps (last.ckpt excluded, as nmt-average does).
# The best checkpoint of a run is the one with the highest validation BLEU in its file name
# (best-stepS-bleuB.ckpt); set BEST_A / BEST_B to override it (e.g. with the
# `best_checkpoint: PATH` line train.py printed, which may be a final-stepS.ckpt).
# Environment: PY (python), TEST_SRC / TEST_REF (default: Bible de-en test split), BENCH_ARGS
# (overrides for the bench's training config, e.g. its data group; default experiment=bible_de_en),
# BENCH_SECONDS (time bound of each speed run, default 120).
# Prints a TSV table "system<TAB>models<TAB>BLEU<TAB>sent/s<TAB>tok/s" (also OUT/summary.tsv).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
RUN_A=$1
RUN_B=$2
N=${3:-5}
OUT=${4:-$RUN_A/ensemble_eval}
TEST_SRC=${TEST_SRC:-data/bible/de-en/test.de}
TEST_REF=${TEST_REF:-data/bible/de-en/test.en}
read -r -a BENCH_ARGS <<< "${BENCH_ARGS:-experiment=bible_de_en}"
BENCH_SECONDS=${BENCH_SECONDS:-120}
mkdir -p "$OUT"

by_step() {  # the checkpoints of DIR (last.ckpt excluded), lowest step first
  ls "$1"/checkpoints/*.ckpt | grep -v '/last\.ckpt$' \
    | sed -E 's/^(.*step0*([0-9]+)[^/]*)$/\2 \1/' | sort -n | cut -d' ' -f2-
}
best_of() {  # the best-*.ckpt of DIR with the highest validation BLEU in its name
  ls "$1"/checkpoints/best-*.ckpt | sed -E 's/^(.*-bleu([0-9.]+)\.ckpt)$/\2 \1/' \
    | sort -g | tail -n 1 | cut -d' ' -f2-
}
join_list() { local IFS=,; echo "[$*]"; }

mapfile -t LAST < <(by_step "$RUN_A" | tail -n "$N")
if (( ${#LAST[@]} < N )); then
  echo "error: $RUN_A/checkpoints has ${#LAST[@]} checkpoint(s), N=$N asked" \
    "(train with callbacks.model_checkpoint.save_top_k=-1)" >&2
  exit 1
fi
BEST_A=${BEST_A:-$(best_of "$RUN_A")}
BEST_B=${BEST_B:-$(best_of "$RUN_B")}
"$PY" scripts/average_checkpoints.py "ckpts=$(join_list "${LAST[@]}")" "output=$OUT/avg_last$N.ckpt" >&2

declare -A SYSTEMS=(
  [best_a]=$BEST_A
  [best_b]=$BEST_B
  ["ens_last$N"]=$(join_list "${LAST[@]}")
  ["avg_last$N"]=$OUT/avg_last$N.ckpt
  [ens_ab]=$(join_list "$BEST_A" "$BEST_B")
)
ORDER=(best_a best_b "ens_last$N" "avg_last$N" ens_ab)
ONLY_BEAM5_FP32=(~bench.search.greedy ~bench.variants.fp32 ~bench.variants.int8
  ~bench.variants.int8_shortlist)
for name in "${ORDER[@]}"; do
  ckpt=${SYSTEMS[$name]}
  echo "== $name: $ckpt" >&2
  "$PY" scripts/evaluate.py "ckpt=$ckpt" "src=$TEST_SRC" "ref=$TEST_REF" progress=false \
    "hyp_out=$OUT/$name.hyp" "output_json=$OUT/$name.bleu.json" >&2
  "$PY" scripts/bench.py task=translate "${BENCH_ARGS[@]}" "bench.ckpt=$ckpt" \
    "bench.test_src=$TEST_SRC" "bench.test_ref=$TEST_REF" "bench.seconds=$BENCH_SECONDS" \
    "${ONLY_BEAM5_FP32[@]}" > "$OUT/$name.bench.json"
done

"$PY" - "$OUT" "${ORDER[@]}" <<'PYEOF' | tee "$OUT/summary.tsv"
import json, sys
out, names = sys.argv[1], sys.argv[2:]
print("system\tmodels\tBLEU\tsent/s\ttok/s")
for name in names:
    bleu = json.load(open(f"{out}/{name}.bleu.json"))
    speed = json.load(open(f"{out}/{name}.bench.json"))["translate"]["beam5"]["fp32_shortlist"]
    models = len(bleu["ckpt"]) if isinstance(bleu["ckpt"], list) else 1
    score = bleu["scores"]["bleu"]["score"]
    print(f"{name}\t{models}\t{score:.2f}\t{speed['sent_per_s']:.2f}\t{speed['tok_per_s']:.1f}")
print(f"# {bleu['scores']['bleu']['signature']}")
PYEOF
