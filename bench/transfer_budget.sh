#!/usr/bin/env bash
# Issue 13's two-hour line: an AWD-LSTM LM pretrained on unlabelled IMDB
# reviews within a budget of LM training time, then the gradual-unfreezing
# classifier on 1,000 labels, beside the n-grams baseline trained in the same
# run. Every arm is scored on the same 5,000 balanced IMDB test reviews. Prints
# each stage's time, the LM's validation perplexity and the budget verdict.
#   bench/transfer_budget.sh            runs go to $RUNS (default runs/budget)
#   BUDGET_S=7200                       the LM time allowed (default two hours)
#   SCRATCH=1                           also the from-scratch classifier
#   THREADS=N                           threads for every stage (default 0: the idle cores at start-up)
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/budget}
budget=${BUDGET_S:-7200}
clf_cfg=bench/configs/transfer-classifier.yaml
threads=(--set "threads=${THREADS:-0}")
mkdir -p "$runs"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "transfer on a budget, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $cpu"

start=$(date +%s)
timed "pretrain (45,000 unlabelled IMDB reviews)" \
  "$bin" pretrain --config bench/configs/budget-pretrain.yaml --out "$runs/lm" --overwrite "${threads[@]}"
lm_s=$(( $(date +%s) - start ))
grep -h '"eval":true' "$runs/lm/metrics.jsonl" | sed 's/^/LM eval: /'
if (( lm_s <= budget )); then verdict=within; else verdict=OVER; fi
echo "LM time: $lm_s s of a $budget s budget ($verdict)"

timed "classifier from the LM" \
  "$bin" finetune --config "$clf_cfg" --from "$runs/lm" --out "$runs/transfer" --overwrite "${threads[@]}"
timed "n-grams" "$bin" finetune --config configs/imdb-ngrams.yaml --out "$runs/ngrams" --overwrite "${threads[@]}"
arms="ngrams transfer"
if [[ ${SCRATCH:-0} == 1 ]]; then
  # shellcheck source=../scripts/lib/scratch_config.sh
  source "$root/scripts/lib/scratch_config.sh"
  scratch_cfg=$(dirname "$clf_cfg")/.scratch-budget-$(basename "$clf_cfg")
  scratch_config "$clf_cfg" "$scratch_cfg"
  trap 'rm -f "$scratch_cfg"' EXIT
  timed "classifier from scratch" \
    "$bin" finetune --config "$scratch_cfg" --out "$runs/scratch" --overwrite "${threads[@]}"
  arms="$arms scratch"
fi
for arm in $arms; do
  "$bin" evaluate --model "$runs/$arm" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced --json \
    >"$runs/$arm-test.json"
  accuracy=$(grep -o '"accuracy":[0-9.]*' "$runs/$arm-test.json" | cut -d: -f2)
  echo "$arm on 5,000 test reviews: accuracy $accuracy, predicted $(predicted_counts "$runs/$arm-test.json")"
done
