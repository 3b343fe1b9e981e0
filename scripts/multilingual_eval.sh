#!/usr/bin/env bash
# Score a multilingual checkpoint (experiment=bible_multi) on a Bible split (test): the four
# supervised directions, zero-shot pt->es / es->pt, and the pivot through English with the
# same model (pt->en->es, es->en->pt). Usage: bash scripts/multilingual_eval.sh CKPT [OUT_DIR]
# SPLIT=valid scores the valid split instead (to choose a recipe; the test split reports it).
# Prints "direction<TAB>BLEU x<TAB>chrF y<TAB>lang z %" per direction (beam 5, sacrebleu 13a
# cased; z = the share of output lines in the requested language by the character n-gram
# identifier of `langid`, trained on the three Bibles' training splits).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CKPT=$1
SPLIT=${SPLIT:-test}
OUT=${2:-$(dirname "$(dirname "$CKPT")")/multilingual_eval/$SPLIT}
DATA=data/bible
mkdir -p "$OUT"
# The zero-shot pair: the same book split as every training pair.
$PY scripts/prepare_data.py corpus.src=a corpus.tgt=v >&2

TEXTS="texts={pt:$DATA/pt-en/train.pt,es:$DATA/es-en/train.es,en:$DATA/pt-en/train.en}"

bleu() {  # bleu NAME SRC TGT_LANG REF: translate SRC into TGT_LANG and score against REF
  $PY scripts/evaluate.py ckpt="$CKPT" src="$2" tgt_lang="$3" ref="$4" hyp_out="$OUT/$1.hyp" \
    output_json="$OUT/$1.json" progress=false >/dev/null
  $PY scripts/langid.py "$TEXTS" input="$OUT/$1.hyp" expect="$3" output_json="$OUT/$1.langid.json" \
    >/dev/null
  $PY - "$1" "$OUT/$1.json" "$OUT/$1.langid.json" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[2]))["scores"]
lang = json.load(open(sys.argv[3]))
share = 100 * lang["shares"][lang["expect"]]
print(f"{sys.argv[1]}\tBLEU {s['bleu']['score']:.2f}\tchrF {s['chrf']['score']:.1f}\t{lang['expect']} {share:.1f} %")
PYEOF
}
pivot() {  # pivot NAME SRC TGT_LANG REF: SRC -> en -> TGT_LANG with the same model
  $PY scripts/translate.py ckpt="$CKPT" input="$2" output="$OUT/$1.en" tgt_lang=en progress=false
  bleu "$1" "$OUT/$1.en" "$3" "$4"
}

# The identifier itself, on the human texts: how often it is right about a reference.
for ref in pt-es/$SPLIT.pt:pt pt-es/$SPLIT.es:es pt-en/$SPLIT.en:en; do
  echo "langid on the reference $ref: $($PY scripts/langid.py "$TEXTS" input="$DATA/${ref%:*}" expect="${ref#*:}" | sed 's/.*: //')"
done
bleu pt-en "$DATA/pt-en/$SPLIT.pt" en "$DATA/pt-en/$SPLIT.en"
bleu en-pt "$DATA/pt-en/$SPLIT.en" pt "$DATA/pt-en/$SPLIT.pt"
bleu es-en "$DATA/es-en/$SPLIT.es" en "$DATA/es-en/$SPLIT.en"
bleu en-es "$DATA/es-en/$SPLIT.en" es "$DATA/es-en/$SPLIT.es"
bleu pt-es.zero-shot "$DATA/pt-es/$SPLIT.pt" es "$DATA/pt-es/$SPLIT.es"
bleu es-pt.zero-shot "$DATA/pt-es/$SPLIT.es" pt "$DATA/pt-es/$SPLIT.pt"
pivot pt-es.pivot "$DATA/pt-es/$SPLIT.pt" es "$DATA/pt-es/$SPLIT.es"
pivot es-pt.pivot "$DATA/pt-es/$SPLIT.es" pt "$DATA/pt-es/$SPLIT.pt"
