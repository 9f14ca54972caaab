#!/usr/bin/env bash
# ulmfit beside the transformers library, fine-tuning the same MiniLM on the
# same 1,000 balanced IMDB training reviews and scoring the same 2,000
# balanced test reviews (bench/hf/compare_hf.py draws them once, seed 42),
# one after the other in one run: ulmfit with its defaults (precision auto),
# transformers with its defaults (fp32 on CPU), then ulmfit in fp32. Same
# torch version (the product's wheel, shared with the reference venv), same
# threads, max length, batch size, epochs and optimizer; each side's own
# recipe within those (ulmfit: one epoch head only, then every group with
# discriminative LRs, one-cycle; transformers: every layer from the start,
# linear warm-up and decay). Then each side's inference over the test
# reviews, timed: `ulmfit predict` against a transformers loop (batch 64,
# file order, dynamic padding). Prints times, accuracies and the ratios.
#   bench/compare_hf.sh                 MAX_LEN=256 EPOCHS=3 (the issue's transformers recipe)
#   EQUAL=0 bench/compare_hf.sh         leave out the fp32 ulmfit run
# Needs a built tree and the reference venv (scripts/conformance-fixtures makes it).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=$(realpath -m "${RUNS:-runs/compare-hf}")  # absolute: config paths resolve against the config file
max_len=${MAX_LEN:-256}
epochs=${EPOCHS:-3}
threads=${THREADS:-$(nproc)}
model=$ULMFIT_DATA/models/all-MiniLM-L6-v2
python=$(cat "$ULMFIT_DATA/conformance/python-path" 2>/dev/null) \
  || { echo "compare_hf: run scripts/conformance-fixtures first (it makes the reference venv)" >&2; exit 1; }
mkdir -p "$runs"
echo "compare_hf: MiniLM on 1,000 IMDB reviews, max length $max_len, $epochs epochs, batch 16, $threads threads;" \
  "$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
"$python" bench/hf/compare_hf.py split --imdb "$ULMFIT_DATA/imdb/aclImdb" --out "$runs/data"

ulmfit_side() {  # precision: prints one JSON line like the transformers side's
  local precision=$1 dir=$runs/ulmfit-$1 start train_ms predict_ms
  "$bin" import --from "$model" --out "$dir/import" --overwrite >/dev/null 2>&1
  start=$(date +%s%N)
  "$bin" finetune --config configs/imdb-minilm-classifier.yaml --from "$dir/import" --out "$dir/clf" --overwrite \
    --set "precision=$precision" --set "threads=$threads" \
    --set "data.train.path=$runs/data/train.jsonl" --set data.train.format=jsonl --set data.train.limit=0 \
    --set data.train.balanced=false --set "train.max_len=$max_len" --set train.long_documents=chunk \
    --set "train.epochs=$epochs" >/dev/null 2>"$dir/finetune.log" || { cat "$dir/finetune.log" >&2; exit 1; }
  train_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  start=$(date +%s%N)
  "$bin" predict --model "$dir/clf" --input "$runs/data/test.jsonl" --format jsonl --output "$dir/predictions.jsonl" \
    --precision "$precision" --threads "$threads" 2>"$dir/predict.log" || { cat "$dir/predict.log" >&2; exit 1; }
  predict_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  "$python" bench/hf/compare_hf.py score --data "$runs/data" --predictions "$dir/predictions.jsonl" \
    | "$python" -c "import json, sys; r = json.load(sys.stdin); r.update(side='ulmfit', precision='$precision',
train_s=round($train_ms / 1000, 1), predict_s=round($predict_ms / 1000, 1),
  predict_docs_per_s=round(2000 / ($predict_ms / 1000), 2));
print(json.dumps(r))"
}

{
  ulmfit_side auto
  "$python" bench/hf/compare_hf.py finetune --model "$model" --data "$runs/data" --max-len "$max_len" \
    --epochs "$epochs" --threads "$threads" --precision fp32 2>"$runs/transformers.log"
  [[ ${EQUAL:-1} == 0 ]] || ulmfit_side fp32
} | tee "$runs/results.jsonl"

"$python" - "$runs/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
hf = next(r for r in rows if r["side"] == "transformers")
for r in rows:
    print(f"{r['side']:>12} {r['precision']:>4}: fine-tune {r['train_s']:7.1f} s, accuracy {100 * r['accuracy']:.2f} %"
          f" (predicted {r['predicted']}), inference {r['predict_docs_per_s']:.1f} reviews/s")
for r in rows:
    if r["side"] == "ulmfit":
        print(f"ulmfit {r['precision']} vs transformers fp32: fine-tune {hf['train_s'] / r['train_s']:.2f}x as fast,"
              f" accuracy {100 * (r['accuracy'] - hf['accuracy']):+.2f} points,"
              f" inference {r['predict_docs_per_s'] / hf['predict_docs_per_s']:.2f}x the reviews/s")
PY
