#!/usr/bin/env bash
# The CUDA path on a machine with an NVIDIA GPU, from a tree built with the CUDA
# path (ULMFIT_CUDA=AUTO there, or ON anywhere; see cmake/UlmfitTorch.cmake):
#   1. the CUDA tests (CPU and GPU give the same logits and gradients);
#   2. `ulmfit bench` of the full-size AWD-LSTM and GPT-style configs, fp32 and bf16;
#   3. bench/minilm_imdb.sh's fine-tune on CUDA (bf16): import all-MiniLM-L6-v2,
#      fine-tune on 1,000 balanced IMDB reviews, evaluate 5,000 balanced test reviews;
#   4. that classifier's fp32 predictions on 500 test reviews, CPU against CUDA.
# Writes JSON and logs to $RUNS (default runs/cuda).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/cuda}
mkdir -p "$runs"
echo "CUDA check, $(date -u +%Y-%m-%dT%H:%MZ), $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
"$bin" --version
tests=${BUILD_DIR:-$root/build}/tests/ulmfit_tests
"$tests" --gtest_filter='*CudaTest*' | grep -E "PASSED|FAILED|SKIPPED"
for config in wikitext2-lm wikitext2-gpt-gpu; do
  for precision in fp32 bf16; do
    "$bin" bench --config "configs/$config.yaml" --set device=cuda --set precision="$precision" --steps 30 \
      2>/dev/null > "$runs/bench-$config-$precision.json"
    echo "bench $config $precision: $(cat "$runs/bench-$config-$precision.json")"
  done
done
timed "import" "$bin" import --from "$ULMFIT_DATA/models/all-MiniLM-L6-v2" --out "$runs/import" --overwrite
timed "finetune (1,000 labels, CUDA)" "$bin" finetune --config configs/imdb-minilm-classifier.yaml --from "$runs/import" \
  --out "$runs/clf" --overwrite --set device=cuda
t0=$(date +%s)
"$bin" evaluate --model "$runs/clf" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced --device cuda --json \
  > "$runs/test-eval.json"
echo "evaluate (5,000 balanced test reviews, CUDA): $(( $(date +%s) - t0 )) s; $(cat "$runs/test-eval.json")"
python3 - "$ULMFIT_DATA/imdb/aclImdb/test" "$runs/reviews.txt" <<'PY'
import os, sys
root, out = sys.argv[1], sys.argv[2]
with open(out, "w", encoding="utf-8") as f:
    for label in ("neg", "pos"):
        for name in sorted(os.listdir(os.path.join(root, label)))[:250]:
            f.write(open(os.path.join(root, label, name), encoding="utf-8").read().replace("\n", " ") + "\n")
PY
for device in cuda cpu; do
  "$bin" predict --model "$runs/clf" --input "$runs/reviews.txt" --output "$runs/predicted-$device.jsonl" \
    --device "$device" --precision fp32 2>/dev/null
done
python3 - "$runs" <<'PY'
import json, sys
gpu = [json.loads(l) for l in open(sys.argv[1] + "/predicted-cuda.jsonl")]
cpu = [json.loads(l) for l in open(sys.argv[1] + "/predicted-cpu.jsonl")]
same = sum(g["label"] == c["label"] for g, c in zip(gpu, cpu))
diff = max(abs(g["probabilities"][k] - c["probabilities"][k]) for g, c in zip(gpu, cpu) for k in g["probabilities"])
print(f"CPU against CUDA, fp32, {len(gpu)} reviews: same label {same}/{len(gpu)}, largest probability difference {diff:.2e}")
PY
