#!/usr/bin/env bash
# Does transfer learning pay? A classifier trained on 1,000 labelled IMDB
# reviews (a) from scratch and (b) from an AWD-LSTM LM pretrained on
# WikiText-2 and adapted on unlabelled IMDB reviews: same architecture, same
# classifier config and budget, scored on the same 5,000 IMDB test reviews.
# Prints each stage's time and both accuracies. Runs go to $RUNS
# (default runs/transfer). Expects a built tree (scripts/build).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/transfer}
cfg=bench/configs
mkdir -p "$runs"

timed() {  # name command...
  local name=$1 start
  shift
  start=$(date +%s)
  "$@" >/dev/null
  echo "$name: $(( $(date +%s) - start )) s"
}
echo "transfer experiment, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
timed "pretrain (WikiText-2)" "$bin" pretrain --config $cfg/transfer-pretrain.yaml --out "$runs/pretrain" --overwrite
timed "adapt (IMDB unlabelled)" "$bin" adapt --config $cfg/transfer-adapt.yaml --from "$runs/pretrain" --out "$runs/adapt" --overwrite
timed "classifier (b) pretrained + adapted" "$bin" finetune --config $cfg/transfer-classifier.yaml --from "$runs/adapt" --out "$runs/transfer" --overwrite
timed "classifier (a) from scratch" "$bin" finetune --config $cfg/transfer-classifier.yaml --out "$runs/scratch" --overwrite
test_data="$ULMFIT_DATA/imdb/aclImdb/test"
for arm in scratch transfer; do
  "$bin" evaluate --model "$runs/$arm" --data "$test_data" --limit 5000 --json >"$runs/$arm-test.json"
done
grep -h '"eval":true' "$runs/pretrain/metrics.jsonl" "$runs/adapt/metrics.jsonl" | sed 's/^/LM eval: /'
awk 'FNR == 1 { match($0, /"accuracy":[0-9.]+/); acc[FILENAME] = substr($0, RSTART + 11, RLENGTH - 11) }
     END {
       a = acc[ARGV[1]]; b = acc[ARGV[2]]
       printf "IMDB test accuracy on 5,000 reviews: (a) from scratch %.2f%%, (b) pretrained + adapted %.2f%%, gain %+.2f points\n", a * 100, b * 100, (b - a) * 100
     }' "$runs/scratch-test.json" "$runs/transfer-test.json"
