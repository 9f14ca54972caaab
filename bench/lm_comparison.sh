#!/usr/bin/env bash
# WikiText-2 language models side by side: the GPT-style Transformer of
# configs/wikitext2-gpt.yaml and the AWD-LSTM of bench/configs/transfer-pretrain.yaml
# (about the same parameter count, 3.4 M and 3.3 M). A similar time budget:
# the Transformer trains one epoch, the AWD-LSTM two, and its evaluation after
# each epoch brackets the Transformer's time.
# The AWD-LSTM uses the Transformer's own tokenizer so the perplexities compare. Prints each
# model's parameters, training time and validation perplexity.
# Runs go to $RUNS (default runs/lm-comparison); the GPT run can then seed
# the transfer experiment: PRETRAINED=runs/lm-comparison/gpt BACKBONE=gpt bench/transfer_experiment.sh
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/lm-comparison}
mkdir -p "$runs"
echo "LM comparison, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
train() {  # name args...
  local name=$1 start
  shift
  start=$(date +%s)
  "$bin" pretrain "$@" --out "$runs/$name" --overwrite 2>"$runs/$name.log" >/dev/null
  local seconds=$(( $(date +%s) - start ))
  local params
  params=$(grep -o '[0-9]* parameters' "$runs/$name.log" | head -1)
  echo "$name: $params, $seconds s (tokenizer training and tokenising included); evaluations:"
  grep '"eval":true' "$runs/$name/metrics.jsonl" | sed 's/^/  /'
  grep -o 'epoch [0-9]*/[0-9]*: .*' "$runs/$name.log" | sed 's/^/  /' || true
}
train gpt --config configs/wikitext2-gpt.yaml
train awd_lstm --config bench/configs/transfer-pretrain.yaml --set "tokenizer.path=$(realpath "$runs/gpt/tokenizer.model")"
