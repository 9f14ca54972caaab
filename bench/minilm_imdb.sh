#!/usr/bin/env bash
# A pretrained model from Hugging Face, through ulmfit: import the bundled
# all-MiniLM-L6-v2, fine-tune it on 1,000 balanced labelled IMDB training
# reviews (configs/imdb-minilm-classifier.yaml), score it on 5,000 balanced
# IMDB test reviews never seen in training. Prints each step's time, the
# accuracy and how many reviews each class got. Expects a built tree.
#   bench/minilm_imdb.sh                   import -> finetune -> evaluate
#   ADAPT=1 bench/minilm_imdb.sh           import -> adapt (masked LM on unlabelled IMDB) -> finetune -> evaluate
#   LABELS=300 bench/minilm_imdb.sh        another number of labels
#   SET="train.epochs=3 ..." bench/minilm_imdb.sh   config overrides for finetune
# Runs go to $RUNS (default runs/minilm).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/minilm}
labels=${LABELS:-1000}
mkdir -p "$runs"
sets=(--set "data.train.limit=$labels")
for s in ${SET:-}; do sets+=(--set "$s"); done
echo "MiniLM on IMDB, $labels labels, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)${SET:+, --set ${SET}}"
start=$(date +%s)
timed "import" "$bin" import --from "$ULMFIT_DATA/models/all-MiniLM-L6-v2" --out "$runs/import" --overwrite
from=$runs/import
if [[ -n ${ADAPT:-} ]]; then
  timed "adapt (masked LM, unlabelled IMDB)" "$bin" adapt --config configs/imdb-minilm-adapt.yaml --from "$from" \
    --out "$runs/adapt" --overwrite
  from=$runs/adapt
fi
timed "finetune ($labels labels)" "$bin" finetune --config configs/imdb-minilm-classifier.yaml --from "$from" \
  --out "$runs/clf-$labels" --overwrite "${sets[@]}"
t0=$(date +%s)
"$bin" evaluate --model "$runs/clf-$labels" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced --json \
  > "$runs/clf-$labels/test-eval.json"
echo "evaluate (5,000 balanced test reviews): $(( $(date +%s) - t0 )) s"
echo "total: $(( $(date +%s) - start )) s"
python3 - "$runs/clf-$labels/test-eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["confusion"]
print(f"accuracy {100 * r['accuracy']:.2f} % on {r['documents']} test reviews; predicted "
      + ", ".join(f"{name} {sum(row[i] for row in c)}" for i, name in enumerate(r["labels"])))
PY
