#!/usr/bin/env bash
# Issue 13's two-hour line: an AWD-LSTM LM pretrained on unlabelled IMDB
# reviews, then adapted on labelled training reviews' texts (labels unused),
# within a budget of LM training time; then the classifier on 1,000 labels,
# beside the n-grams baseline trained in the same run on the same labels.
# Every arm is scored on the same 5,000 balanced IMDB test reviews.
# Prints each stage's time, the LM's validation perplexity, the budget verdict
# and each arm's accuracy per label draw and on average.
#   bench/transfer_budget.sh            runs go to $RUNS (default runs/budget)
#   BUDGET_S=7200                       the LM time allowed (default two hours)
#   LM=runs/budget/lm-adapt             reuse an LM this script trained before (its time is not re-measured)
#   PRETRAIN_EPOCHS=N                   epochs of pretraining (default budget-pretrain.yaml's 1, fit to the
#                                       slowest CPU measured; a faster machine has room for more)
#   ADAPT=0                             skip the adaptation stage: the LM is the pretrained one alone
#   SEEDS="42 43 44"                    one classifier per seed and arm: the seed draws the labels (default 42)
#                                       the means cover every ARM-sSEED-test.json in $RUNS, earlier runs' too
#   ARMS="scratch"                      the classifier arms to train (default "transfer ngrams")
#   SCRATCH=1                           adds the from-scratch classifier to ARMS
#   GRADUAL=1                           adds fastai's gradual-unfreezing classifier (transfer-classifier.yaml) to ARMS
#   THREADS=N                           threads for every stage (default 0: the idle cores at start-up)
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/budget}
budget=${BUDGET_S:-7200}
threads=(--set "threads=${THREADS:-0}")
mkdir -p "$runs"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "transfer on a budget, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $cpu"

adapt=${ADAPT:-1}
if [[ -z ${LM:-} ]]; then
  # budget-adapt.yaml reads the split's training pool, leaving the dev reviews
  # unread; making the split is not LM training, so it happens before the clock.
  [[ $adapt != 1 ]] || make_movie_split
  start=$(date +%s)
  lm=$runs/lm
  epochs=()
  [[ -z ${PRETRAIN_EPOCHS:-} ]] || epochs=(--set "train.epochs=$PRETRAIN_EPOCHS")
  timed "pretrain (45,000 unlabelled IMDB reviews)" \
    "$bin" pretrain --config bench/configs/budget-pretrain.yaml --out "$lm" --overwrite "${threads[@]}" "${epochs[@]}"
  if [[ $adapt == 1 ]]; then
    grep -h '"eval":true' "$lm/metrics.jsonl" | sed 's/^/pretrained LM eval: /'
    timed "adapt (11,500 labelled training reviews' texts)" \
      "$bin" adapt --config bench/configs/budget-adapt.yaml --from "$lm" --out "$runs/lm-adapt" --overwrite \
      "${threads[@]}"
    lm=$runs/lm-adapt
  fi
  lm_s=$(( $(date +%s) - start ))
  if (( lm_s <= budget )); then verdict=within; else verdict=OVER; fi
  echo "LM time: $lm_s s of a $budget s budget ($verdict)"
else
  lm=$LM
  echo "LM: reusing $lm (its time was measured when it was trained)"
fi
grep -h '"eval":true' "$lm/metrics.jsonl" | sed 's/^/LM eval: /'

arms=${ARMS:-transfer ngrams}
[[ ${GRADUAL:-0} != 1 ]] || arms="$arms gradual"
[[ ${SCRATCH:-0} != 1 ]] || arms="$arms scratch"
if [[ " $arms " == *" scratch "* ]]; then
  # shellcheck source=../scripts/lib/scratch_config.sh
  source "$root/scripts/lib/scratch_config.sh"
  # A file of its own, so that runs in parallel do not remove each other's.
  scratch_cfg=$(mktemp --suffix=.yaml)
  scratch_config bench/configs/transfer-classifier.yaml "$scratch_cfg"
  trap 'rm -f "$scratch_cfg"' EXIT
fi
train_arm() {  # arm seed: fine-tunes one classifier into $runs/ARM-sSEED
  local how
  case $1 in
    transfer) how=(--config bench/configs/budget-classifier.yaml --from "$lm") ;;
    gradual) how=(--config bench/configs/transfer-classifier.yaml --from "$lm") ;;
    ngrams) how=(--config configs/imdb-ngrams.yaml) ;;
    scratch) how=(--config "$scratch_cfg") ;;
  esac
  "$bin" finetune "${how[@]}" --out "$runs/$1-s$2" --overwrite --set "seed=$2" "${threads[@]}"
}
for seed in ${SEEDS:-42}; do
  for arm in $arms; do
    timed "$arm, seed $seed" train_arm "$arm" "$seed"
    "$bin" evaluate --model "$runs/$arm-s$seed" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced \
      --json >"$runs/$arm-s$seed-test.json"
    accuracy=$(grep -o '"accuracy":[0-9.]*' "$runs/$arm-s$seed-test.json" | cut -d: -f2)
    echo "$arm, seed $seed, on 5,000 test reviews: accuracy $accuracy," \
      "predicted $(predicted_counts "$runs/$arm-s$seed-test.json")"
  done
done
for arm in $arms; do
  python3 - "$arm" "$runs"/"$arm"-s*-test.json <<'PY'
import json, statistics, sys
acc = [100 * json.load(open(f))["accuracy"] for f in sys.argv[2:]]
spread = " +- %.2f (sample sd)" % statistics.stdev(acc) if len(acc) > 1 else ""
print("%s: mean test accuracy %.2f %%%s over %d label draws" % (sys.argv[1], statistics.mean(acc), spread, len(acc)))
PY
done
