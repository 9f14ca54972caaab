#!/usr/bin/env bash
# Data-parallel scaling on this machine: the quickstart's AWD-LSTM language
# model (emb 128, hidden 384, 3 layers, batch 32 x bptt 70, fp32) pretrained
# on part of WikiText-2 by one process of one thread, and by two ranks of one
# thread each over Gloo (`ulmfit launch --nproc 2`, 16 rows each: the same
# global batch), alternating, ROUNDS times (default 2). Prints training
# tokens/s of each, the scaling efficiency (two ranks' tokens/s over twice
# one process's) and the gradient all-reduce time per step. Runs go to $RUNS
# (default runs/distributed). Expects a built tree (scripts/build).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/distributed}
rounds=${ROUNDS:-2}
docs=${DOCS:-120}
mkdir -p "$runs"
echo "# data-parallel scaling, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# WikiText-2, first $docs articles, 1 epoch, batch 32, bptt 70, fp32, 1 thread per process"
set_args=(--set threads=1 precision=fp32 "data.train.limit=$docs" train.log_every=10)
for round in $(seq "$rounds"); do
  for arm in one two; do
    out="$runs/$arm-$round"
    if [[ $arm == one ]]; then
      cmd=("$bin" pretrain)
    else
      cmd=("$bin" launch --nproc 2 -- ulmfit pretrain)
    fi
    start=$(date +%s)
    "${cmd[@]}" --config configs/quickstart-pretrain.yaml "${set_args[@]}" --out "$out" --overwrite \
      >/dev/null 2>"$out.log" || { cat "$out.log" >&2; exit 1; }
    echo "$arm-$round: $(( $(date +%s) - start )) s"
  done
done
python3 - "$runs" "$rounds" <<'PY'
import json, re, sys
runs, rounds = sys.argv[1], int(sys.argv[2])
def tokens_per_s(run):
    steps = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if '"eval"' not in l]
    return steps[-1]["tokens_per_s"]
def sync_ms(run):
    m = re.search(r"gradient all-reduce ([0-9.]+) ms per step over (\d+) steps", open(f"{run}.log").read())
    return float(m.group(1)), int(m.group(2))
for r in range(1, rounds + 1):
    one, two = tokens_per_s(f"{runs}/one-{r}"), tokens_per_s(f"{runs}/two-{r}")
    ms, steps = sync_ms(f"{runs}/two-{r}")
    print(f"round {r}: 1 process {one:.0f} tokens/s, 2 ranks {two:.0f} tokens/s: "
          f"{two / one:.2f}x, scaling efficiency {100 * two / (2 * one):.0f} %; all-reduce {ms:.2f} ms per step "
          f"({steps} steps)")
PY
