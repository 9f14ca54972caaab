#!/usr/bin/env bash
# QRNN against AWD-LSTM at the same width, depth and vocabulary.
# 1. Training throughput (`ulmfit bench --only lm`, synthetic ids) at the
#    quickstart's size (emb 128, hidden 384, 3 layers, 8k vocabulary) and at
#    configs/wikitext2-lm.yaml's (emb 400, hidden 1152, 3 layers, 16k), in fp32
#    and bf16 (where the CPU has it natively), alternating backbones.
# 2. Validation perplexity on WikiText-2 at equal wall time: the quickstart LM
#    config (first $DOCS articles, precision auto) for one epoch with each
#    backbone, then the QRNN again for as many epochs as fit in the AWD-LSTM's
#    time (when that is more than one).
# Runs go to $RUNS (default runs/qrnn). Expects a built tree (scripts/build).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/qrnn}
docs=${DOCS:-300}
mkdir -p "$runs"
echo "# QRNN vs AWD-LSTM, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# bf16 only where the CPU multiplies it natively: elsewhere LibTorch emulates
# it, a full-size step takes minutes, and precision auto would not pick it.
precisions=(fp32)
if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
  precisions+=(bf16)
else
  echo "# no native bf16 on this CPU: fp32 only"
fi
for config in configs/quickstart-pretrain.yaml configs/wikitext2-lm.yaml; do
  for precision in "${precisions[@]}"; do
    for backbone in awd_lstm qrnn; do
      "$bin" bench --config "$config" --set "model.backbone=$backbone" "precision=$precision" --only lm --steps 8 --warmup 2 \
        2>/dev/null | python3 -c "import json, sys; d = json.load(sys.stdin); \
print(f\"$config $precision $backbone: {d['lm_train_tokens_per_s']:.0f} tokens/s ({100 * d['lm_peak_fraction']:.0f} % of peak)\")"
    done
  done
done

train() {  # name backbone epochs
  local start
  start=$(date +%s)
  "$bin" pretrain --config configs/quickstart-pretrain.yaml --set "model.backbone=$2" "train.epochs=$3" \
    "data.train.limit=$docs" --out "$runs/$1" --overwrite >/dev/null 2>"$runs/$1.log" || { cat "$runs/$1.log" >&2; exit 1; }
  echo $(( $(date +%s) - start ))
}
perplexity() { python3 -c "import json; print(min(json.loads(l)['perplexity'] for l in open('$runs/$1/metrics.jsonl') if '\"eval\"' in l))"; }
lstm_s=$(train lstm-1 awd_lstm 1)
echo "awd_lstm, 1 epoch: $lstm_s s, validation perplexity $(perplexity lstm-1)"
qrnn_s=$(train qrnn-1 qrnn 1)
echo "qrnn, 1 epoch: $qrnn_s s, validation perplexity $(perplexity qrnn-1)"
epochs=$(( lstm_s / qrnn_s ))
if (( epochs > 1 )); then
  s=$(train "qrnn-$epochs" qrnn "$epochs")
  echo "qrnn, $epochs epochs (in the AWD-LSTM's time): $s s, validation perplexity $(perplexity "qrnn-$epochs")"
fi
