#!/usr/bin/env bash
# predict on 5,000 balanced IMDB test reviews: throughput, and a check that its labels
# are the ones evaluate scores: the confusion matrix rebuilt from predict's
# output must equal evaluate's, on the same CSV file.
#   bench/predict_vs_evaluate.sh RUN_DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
run=${1:?usage: bench/predict_vs_evaluate.sh RUN_DIR}
export ULMFIT_DATA=${ULMFIT_DATA:-$root/data/datasets}
bin=${BUILD_DIR:-$root/build}/ulmfit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 5,000 test reviews, 2,500 of each label, drawn with a seeded random source
# (SEED, default 42; coreutils' recipe for repeatable shuf), as an RFC 4180 CSV.
seeded_bytes() { openssl enc -aes-256-ctr -pass pass:"${SEED:-42}-$1" -nosalt </dev/zero 2>/dev/null; }
for label in neg pos; do
  find "$ULMFIT_DATA/imdb/aclImdb/test/$label" -name '*.txt' | sort | shuf -n 2500 --random-source=<(seeded_bytes "$label")
done >"$work/files"
{
  echo "text,label"
  while read -r f; do
    label=$(basename "$(dirname "$f")")
    awk -v label="$label" '{ gsub(/"/, "\"\""); printf "\"%s\",%s\n", $0, label }' "$f"
  done <"$work/files"
} >"$work/test.csv"

start=$(date +%s.%N)
"$bin" predict --model "$run" --format csv --input "$work/test.csv" --output "$work/pred.jsonl" 2>/dev/null
seconds=$(echo "$(date +%s.%N) $start" | awk '{print $1 - $2}')
"$bin" evaluate --model "$run" --data "$work/test.csv" --format csv --json >"$work/eval.json" 2>/dev/null

echo "predict: 5000 reviews in $(printf '%.1f' "$seconds") s = $(awk -v s="$seconds" 'BEGIN{printf "%.0f", 5000 / s}') reviews/s"
# Confusion from predict's labels against the CSV's labels (rows: true neg/pos).
paste -d' ' <(tail -n +2 "$work/test.csv" | sed -E 's/.*,(neg|pos)$/\1/') \
            <(sed -E 's/.*"label":"([a-z]+)".*/\1/' "$work/pred.jsonl") |
  awk '{ c[$1 "," $2]++ } END { printf "[[%d,%d],[%d,%d]]\n", c["neg,neg"], c["neg,pos"], c["pos,neg"], c["pos,pos"] }' >"$work/from_predict"
from_eval=$(sed -E 's/.*"confusion":(\[\[[0-9]+,[0-9]+\],\[[0-9]+,[0-9]+\]\]).*/\1/' "$work/eval.json")
echo "confusion from predict:  $(cat "$work/from_predict")"
echo "confusion from evaluate: $from_eval"
if [[ "$(cat "$work/from_predict")" == "$from_eval" ]]; then echo "labels agree"; else echo "labels DIFFER"; exit 1; fi
