#!/usr/bin/env bash
# ulmfit's LM training step against the reference PyTorch script
# (../shared/bench/reference_awd_lstm.py, fastai's AWD-LSTM modules) on the
# same shapes, threads and machine, alternating the two so that drift in the
# machine's speed hits both: fp32 vs fp32, bf16 vs bf16 (autocast), and
# ulmfit's `precision: auto` vs the reference's fp32. The reference runs on
# the venv's torch, the same version as the LibTorch ulmfit links.
#   bench/compare_reference.sh [ROUNDS]      (default 2 rounds per pair)
#   SHAPES="full small"  THREADS=$(nproc)    environment overrides
# Expects a built tree (scripts/build). Prints each run's JSON, then medians and ratios.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-2}
threads=${THREADS:-$(nproc)}
bin=${BUILD_DIR:-$root/build}/ulmfit
reference=${REFERENCE:-$root/../shared/bench/reference_awd_lstm.py}
"$root/scripts/setup" >/dev/null
python=${ULMFIT_VENV:-$HOME/.cache/ulmfit/venv-torch-2.11.0}/bin/python
[[ -x $python ]] || { echo "no venv python at $python (set ULMFIT_VENV)" >&2; exit 1; }
[[ -f $reference ]] || { echo "reference script not found: $reference" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# name: vocab emb hidden layers bptt batch steps warmup
declare -A shapes=([full]="16000 400 1152 3 72 32 5 1" [small]="16000 128 256 3 72 32 20 3")

echo "# compare_reference $(date -u +%Y-%m-%dT%H:%MZ); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $threads threads"
for shape in ${SHAPES:-full small}; do
  read -r vocab emb hidden layers bptt batch steps warmup <<<"${shapes[$shape]}"
  ref_args=(--vocab "$vocab" --emb "$emb" --hidden "$hidden" --layers "$layers" --bptt "$bptt" --batch "$batch"
            --steps "$steps" --warmup "$warmup" --threads "$threads")
  ulm_args=(bench --only lm --steps "$steps" --warmup "$warmup" --set tokenizer.vocab_size="$vocab"
            model.emb_size="$emb" model.hidden_size="$hidden" model.layers="$layers" train.bptt="$bptt"
            train.batch_size="$batch" threads="$threads")
  for ((round = 1; round <= rounds; ++round)); do
    for precision in fp32 bf16; do
      line=$("$python" "$reference" "${ref_args[@]}" --precision "$precision" 2>/dev/null)
      echo "$shape reference $precision $line" | tee -a "$log"
      line=$("$bin" "${ulm_args[@]}" precision="$precision" 2>/dev/null)
      echo "$shape ulmfit $precision $line" | tee -a "$log"
    done
    line=$("$bin" "${ulm_args[@]}" precision=auto 2>/dev/null)
    echo "$shape ulmfit auto $line" | tee -a "$log"
  done
done

"$python" - "$log" <<'PY'
import json, statistics, sys
runs = {}
for row in open(sys.argv[1]):
    shape, impl, precision, payload = row.split(" ", 3)
    j = json.loads(payload)
    tps = j.get("tokens_per_s", j.get("lm_train_tokens_per_s"))
    runs.setdefault((shape, impl, precision), []).append((tps, j))
def med(key):
    return statistics.median(t for t, _ in runs[key])
print("\nmedian LM training tokens/s, and ratios")
for shape in sorted({k[0] for k in runs}, reverse=True):
    r32, rbf = med((shape, "reference", "fp32")), med((shape, "reference", "bf16"))
    u32, ubf, uauto = med((shape, "ulmfit", "fp32")), med((shape, "ulmfit", "bf16")), med((shape, "ulmfit", "auto"))
    auto_prec = runs[(shape, "ulmfit", "auto")][0][1]["precision"]
    last = runs[(shape, "ulmfit", "bf16")][-1][1]
    print(f"{shape}: reference fp32 {r32:.0f}, bf16 {rbf:.0f}; ulmfit fp32 {u32:.0f}, bf16 {ubf:.0f}, auto ({auto_prec}) {uauto:.0f}")
    print(f"  ulmfit fp32 / reference fp32 = {u32 / r32:.2f}x")
    print(f"  ulmfit bf16 / reference bf16 = {ubf / rbf:.2f}x")
    print(f"  ulmfit auto / reference fp32 = {uauto / r32:.2f}x")
    f32 = runs[(shape, "ulmfit", "fp32")][-1][1]
    print(f"  matmul peak (2048^3): fp32 {f32['matmul_peak_fp32_gflops']:.0f} GFLOP/s, bf16 {last['matmul_peak_bf16_gflops']:.0f} GFLOP/s; "
          f"ulmfit LM training reaches {f32['lm_train_gflops']:.0f} GFLOP/s fp32 ({100 * f32['lm_peak_fraction']:.0f} % of peak), "
          f"{last['lm_train_gflops']:.0f} GFLOP/s bf16 ({100 * last['lm_peak_fraction']:.0f} %)")
PY
