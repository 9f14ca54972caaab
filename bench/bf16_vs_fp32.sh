#!/usr/bin/env bash
# Does bf16 mixed precision cost accuracy? Trains the same small WikiText-2 LM
# (bench/configs/precision-lm.yaml: same seed, data and budget) in fp32 and in
# bf16 and prints both validation losses, their relative difference (the
# target is within 2 %) and the run times. Runs go to $RUNS (default
# runs/precision). Expects a built tree (scripts/build).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/precision}
echo "# bf16 vs fp32, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for precision in fp32 bf16; do
  start=$(date +%s)
  "$bin" pretrain --config bench/configs/precision-lm.yaml --set precision=$precision \
    --out "$runs/$precision" --overwrite >/dev/null 2>"$runs-$precision.log" || { cat "$runs-$precision.log" >&2; exit 1; }
  echo "$precision: $(( $(date +%s) - start )) s"
done
python3 - "$runs" <<'PY'
import json, sys
def best(run):
    evals = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"eval"' in l]
    return min(e["valid_loss"] for e in evals)
fp32, bf16 = best(sys.argv[1] + "/fp32"), best(sys.argv[1] + "/bf16")
print(f"validation loss: fp32 {fp32:.4f}, bf16 {bf16:.4f}; bf16 is {100 * (bf16 - fp32) / fp32:+.2f} % of fp32 "
      f"({'within' if abs(bf16 - fp32) / fp32 <= 0.02 else 'NOT within'} 2 %)")
PY
