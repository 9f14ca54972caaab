#!/usr/bin/env bash
# ulmfit beside fastai 2.8.12 on the same data, model and budget, one thread
# each (issue: ULMFiT on a CPU budget):
#   - an AWD-LSTM LM (emb 128, hidden 384, 3 layers, 8k unigram SentencePiece,
#     fastai's LM dropouts x 0.3) trained one epoch of one-cycle at 1e-2,
#     batch 32, windows of 70, on 5,000 unlabelled IMDB reviews; scored on 500
#     others as perplexity per word (each tool's summed loss over the same
#     text, divided by its whitespace-separated words: the tokenizers differ);
#   - from it, the gradual-unfreezing classifier on 1,000 balanced labelled
#     training reviews, scored on 2,000 balanced test reviews.
# Both tools read the files bench/fastai/make_data.py writes. The recipes:
# bench/configs/fastai-lm.yaml + fastai-classifier.yaml for ulmfit,
# bench/fastai/ulmfit_fastai.py for fastai.
#   bench/fastai_comparison.sh                 one tool after the other
#   TOGETHER=1 bench/fastai_comparison.sh      both at once, a core each
#   SEED=43 bench/fastai_comparison.sh         another seed for both tools (default 42)
#   TOOLS=ulmfit bench/fastai_comparison.sh    ulmfit alone (fastai's seed-43 run repeated its figures
#                                              to the last digit); a fastai.json already in $RUNS is
#                                              printed, marked as an earlier run's
# Runs go to $RUNS (default runs/fastai-comparison). fastai lives in its own
# venv (bench/fastai/requirements.txt, torch from the product's venv), made
# here when missing; the product never needs it.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=$(mkdir -p "${RUNS:-runs/fastai-comparison}" && cd "${RUNS:-runs/fastai-comparison}" && pwd)
venv=${ULMFIT_CACHE:-$HOME/.cache/ulmfit}/venv-fastai
# shellcheck source=../scripts/lib/side_venv.sh
source "$root/scripts/lib/side_venv.sh"
side_venv "$venv" "$root/bench/fastai/requirements.txt" fastai --no-deps
python=$venv/bin/python
seed=${SEED:-42}

echo "fastai comparison, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), together=${TOGETHER:-0}, seed $seed"
data=$runs/data
"$python" bench/fastai/make_data.py --imdb "$ULMFIT_DATA/imdb/aclImdb" --out "$data"

run_ulmfit() {
  local lm=$runs/ulmfit-lm clas=$runs/ulmfit-classifier
  "$bin" pretrain --config bench/configs/fastai-lm.yaml --out "$lm" --overwrite --set "seed=$seed" \
    --set "data.train.path=$data/lm_train.txt" --set "data.valid.path=$data/lm_valid.txt" >/dev/null
  "$bin" evaluate --model "$lm" --data "$data/lm_valid.txt" --threads 1 --precision fp32 --json >"$runs/ulmfit-lm-eval.json"
  local start=$SECONDS
  "$bin" finetune --config bench/configs/fastai-classifier.yaml --from "$lm" --out "$clas" --overwrite --set "seed=$seed" \
    --set "data.train.path=$data/cls_train.tsv" >/dev/null
  echo $((SECONDS - start)) >"$runs/ulmfit-finetune-seconds"
  "$bin" evaluate --model "$clas" --data "$data/cls_test.tsv" --threads 1 --precision fp32 --json >"$runs/ulmfit-test-eval.json"
}
run_fastai() {
  "$python" -u bench/fastai/ulmfit_fastai.py --data "$data" --work "$runs/fastai" --seed "$seed" >"$runs/fastai.out"
  tail -1 "$runs/fastai.out" >"$runs/fastai.json"
}

ulmfit_only=0
[[ ${TOOLS:-} == ulmfit ]] && ulmfit_only=1
if [[ ${TOGETHER:-0} == 1 && $ulmfit_only == 0 ]]; then
  run_ulmfit 2>"$runs/ulmfit.log" &
  u=$!
  run_fastai 2>"$runs/fastai.log" &
  f=$!
  wait "$u" || { tail -5 "$runs/ulmfit.log" >&2; exit 1; }
  wait "$f" || { tail -5 "$runs/fastai.log" >&2; exit 1; }
else
  run_ulmfit 2>"$runs/ulmfit.log" || { tail -5 "$runs/ulmfit.log" >&2; exit 1; }
  if [[ $ulmfit_only == 0 ]]; then run_fastai 2>"$runs/fastai.log" || { tail -5 "$runs/fastai.log" >&2; exit 1; }; fi
fi

"$python" - "$runs" "$ulmfit_only" <<'PY'
import json, math, pathlib, sys
runs, ulmfit_only = pathlib.Path(sys.argv[1]), sys.argv[2] == "1"
words = json.loads((runs / "data" / "words.json").read_text())["lm_valid_words"]
fa = json.loads((runs / "fastai.json").read_text()) if (runs / "fastai.json").is_file() else None
lm_eval = json.loads((runs / "ulmfit-lm-eval.json").read_text())
train_lines = [json.loads(l) for l in open(runs / "ulmfit-lm" / "metrics.jsonl")]
last_train = [l for l in train_lines if "tokens_per_s" in l][-1]
test = json.loads((runs / "ulmfit-test-eval.json").read_text())
called = {name: sum(row[i] for row in test["confusion"]) for i, name in enumerate(test["labels"])}
ulmfit = {"lm_tokens_per_s": last_train["tokens_per_s"], "lm_valid_nll": lm_eval["loss"] * lm_eval["tokens"],
          "lm_valid_tokens": lm_eval["tokens"], "test_accuracy": test["accuracy"], "called": called,
          "finetune_s": int((runs / "ulmfit-finetune-seconds").read_text())}
print(f"LM validation text: {words} words")
print("| | LM tokens/s | LM valid tokens | perplexity per token | perplexity per word | classifier accuracy | called | fine-tune |")
print("|---|---|---|---|---|---|---|---|")
rows = [("ulmfit", ulmfit)]
if fa:  # with TOOLS=ulmfit, a fastai.json left here by an earlier run: say so
    rows.append(("fastai (fastai.json of an earlier run)" if ulmfit_only else "fastai", fa))
for name, r in rows:
    print(f"| {name} | {r['lm_tokens_per_s']:,.0f} | {r['lm_valid_tokens']:,.0f} | "
          f"{math.exp(r['lm_valid_nll'] / r['lm_valid_tokens']):,.1f} | {math.exp(r['lm_valid_nll'] / words):,.1f} | "
          f"{100 * r['test_accuracy']:.2f} % | {' / '.join(f'{k} {v}' for k, v in r['called'].items())} | "
          f"{r['finetune_s']:.0f} s |")
PY
