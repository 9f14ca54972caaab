#!/usr/bin/env bash
# Does transfer learning pay? A classifier trained on 1,000 labelled IMDB
# reviews (a) from scratch and (b) from an LM pretrained on WikiText-2 and
# adapted on unlabelled IMDB reviews: same architecture, same classifier
# config and budget, scored on the same 5,000 IMDB test reviews. Prints each
# stage's time and both accuracies. Expects a built tree (scripts/build).
#   bench/transfer_experiment.sh                  AWD-LSTM (bench/configs/transfer-*.yaml)
#   BACKBONE=gpt bench/transfer_experiment.sh     configs/wikitext2-gpt.yaml, imdb-gpt-*.yaml
#   BACKBONE=bert bench/transfer_experiment.sh    the BERT-style configs
# Runs go to $RUNS (default runs/transfer[-BACKBONE]). PRETRAINED=RUN reuses
# an existing pretrain run of the same configuration instead of training one.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
backbone=${BACKBONE:-awd_lstm}
case $backbone in
  awd_lstm) runs=${RUNS:-runs/transfer}
            pretrain_cfg=bench/configs/transfer-pretrain.yaml adapt_cfg=bench/configs/transfer-adapt.yaml
            clf_cfg=bench/configs/transfer-classifier.yaml ;;
  gpt|bert) runs=${RUNS:-runs/transfer-$backbone}
            pretrain_cfg=configs/wikitext2-$backbone.yaml adapt_cfg=configs/imdb-$backbone-adapt.yaml
            clf_cfg=configs/imdb-$backbone-classifier.yaml ;;
  *) echo "BACKBONE must be awd_lstm, gpt or bert" >&2; exit 2 ;;
esac
mkdir -p "$runs"
pretrained=${PRETRAINED:-$runs/pretrain}

echo "transfer experiment ($backbone), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
if [[ -n ${PRETRAINED:-} ]]; then
  echo "pretrain (WikiText-2): reusing $pretrained"
else
  timed "pretrain (WikiText-2)" "$bin" pretrain --config "$pretrain_cfg" --out "$pretrained" --overwrite
fi
timed "adapt (IMDB unlabelled)" "$bin" adapt --config "$adapt_cfg" --from "$pretrained" --out "$runs/adapt" --overwrite
timed "classifier (b) pretrained + adapted" "$bin" finetune --config "$clf_cfg" --from "$runs/adapt" --out "$runs/transfer" --overwrite
# The scratch arm: the same config less the keys of the fine-tuning recipe,
# so finetune's from-scratch recipe fills them in (every group from the
# start, one LR, no dropout, batches of random lengths).
# shellcheck source=../scripts/lib/scratch_config.sh
source "$root/scripts/lib/scratch_config.sh"
scratch_cfg=$(mktemp --suffix=.yaml)  # not beside $clf_cfg: parallel runs would remove each other's
scratch_config "$clf_cfg" "$scratch_cfg"
trap 'rm -f "$scratch_cfg"' EXIT
timed "classifier (a) from scratch" "$bin" finetune --config "$scratch_cfg" --out "$runs/scratch" --overwrite
test_data="$ULMFIT_DATA/imdb/aclImdb/test"
for arm in scratch transfer; do
  "$bin" evaluate --model "$runs/$arm" --data "$test_data" --limit 5000 --balanced --json >"$runs/$arm-test.json"
  echo "$arm: predicted $(predicted_counts "$runs/$arm-test.json")"
done
grep -h '"eval":true' "$pretrained/metrics.jsonl" "$runs/adapt/metrics.jsonl" | sed 's/^/LM eval: /'
awk 'FNR == 1 { match($0, /"accuracy":[0-9.]+/); acc[FILENAME] = substr($0, RSTART + 11, RLENGTH - 11) }
     END {
       a = acc[ARGV[1]]; b = acc[ARGV[2]]
       printf "IMDB test accuracy on 5,000 reviews: (a) from scratch %.2f%%, (b) pretrained + adapted %.2f%%, gain %+.2f points\n", a * 100, b * 100, (b - a) * 100
     }' "$runs/scratch-test.json" "$runs/transfer-test.json"
