#!/usr/bin/env bash
# Throughput on an idle machine and with one core held by another process
# (stress-ng --cpu 1), for threads 0 / 1 / 2: LM training and classifier
# predict (ulmfit bench: the 3-layer AWD-LSTM, emb 128, hidden 256, vocab 4,000,
# batch 32, bptt 48, as issue 16 measured it) and evaluate on 1,000 IMDB test
# reviews. fp32 throughout, so that only threading differs.
#   bench/busy_core.sh            prints one table row per load and thread count
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
command -v stress-ng >/dev/null || { echo "busy_core: needs stress-ng (apt-get install stress-ng)" >&2; exit 2; }
work=$(mktemp -d)
trap 'pkill -P $$ stress-ng 2>/dev/null || true; rm -rf "$work"' EXIT
shape=(--set tokenizer.vocab_size=4000 --set model.emb_size=128 --set model.hidden_size=256 --set model.layers=3
       --set train.batch_size=32 --set train.bptt=48 --set precision=fp32)
echo "# building the classifier that evaluate scores" >&2
"$bin" finetune --config bench/configs/busy-core-classifier.yaml --out "$work/clf" >/dev/null 2>&1
# Tokenise the test reviews once, so that every timed evaluate reads the token cache.
"$bin" evaluate --model "$work/clf" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 1000 --balanced --json >/dev/null 2>&1
printf "| load | threads | chosen | LM train tokens/s | predict docs/s | evaluate docs/s |\n|---|---|---|---|---|---|\n"
for load in idle busy; do
  if [[ $load == busy ]]; then stress-ng --cpu 1 >/dev/null 2>&1 & sleep 2; fi
  # "2 before": threads 2 with libgomp's default spinning (what ulmfit did before
  # it chose a policy: a policy in the environment is left alone).
  for t in 0 1 2 "2 before"; do
    env=()
    if [[ $t == "2 before" ]]; then env=(GOMP_SPINCOUNT=300000); fi
    json=$(env "${env[@]}" "$bin" bench "${shape[@]}" --set threads=${t%% *} --steps 30 --only lm --only predict 2>"$work/bench.log")
    chosen=$(grep -o "threads: [0-9]*" "$work/bench.log" | head -1 | cut -d' ' -f2)
    start=$EPOCHREALTIME
    env "${env[@]}" "$bin" evaluate --model "$work/clf" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 1000 \
      --balanced --precision fp32 --threads ${t%% *} --json >/dev/null 2>&1
    end=$EPOCHREALTIME
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("| %s | %s | %s | %.0f | %.1f | %.1f |" % (sys.argv[2], sys.argv[3], sys.argv[4], d["lm_train_tokens_per_s"], d["predict_docs_per_s"], 1000/(float(sys.argv[6])-float(sys.argv[5]))))' \
      "$json" "$load" "$t" "$chosen" "$start" "$end"
  done
  if [[ $load == busy ]]; then pkill -P $$ stress-ng || true; fi
done
