#!/usr/bin/env bash
# Tunes a fine-tuning recipe without touching the test reviews: the 25,000
# labelled training reviews are split by movie into a training pool (even IMDB
# title numbers) and a dev pool (odd ones), so that, as with the test reviews,
# no dev review is about a movie the classifier trained on. finetune draws its
# labels from the first as $CONFIG says; DEV (default 1,000) balanced reviews
# of the second score it. Each argument is one recipe: a quoted list of config
# overrides ("" = the config as it is).
#   CONFIG=bench/configs/transfer-classifier.yaml FROM=runs/budget/lm bench/finetune_dev.sh "" "train.epochs=3"
#   CONFIG    the classifier config (required)
#   FROM      the run to fine-tune (empty: from scratch)
#   RUNS      where the runs go (default runs/finetune-dev)
#   DEV       how many dev reviews score each recipe (default 1000)
# Expects a built tree.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
config=${CONFIG:?CONFIG names the classifier config}
make_movie_split
runs=${RUNS:-runs/finetune-dev}
mkdir -p "$runs"
from=()
[[ -z ${FROM:-} ]] || from=(--from "$FROM")
i=0
for recipe in "$@"; do
  i=$((i + 1))
  sets=(--set "data.train.path=$movie_split_dir/pool")
  for s in $recipe; do sets+=(--set "$s"); done
  start=$(date +%s)
  "$bin" finetune --config "$config" "${from[@]}" --out "$runs/r$i" --overwrite "${sets[@]}" \
    >/dev/null 2>"$runs/r$i.log"
  took=$(( $(date +%s) - start ))
  json=$runs/r$i-dev.json
  "$bin" evaluate --model "$runs/r$i" --data "$movie_split_dir/dev" --limit "${DEV:-1000}" --balanced --json \
    >"$json" 2>/dev/null
  acc=$(python3 -c 'import json, sys; print("%.2f" % (100 * json.load(open(sys.argv[1]))["accuracy"]))' "$json")
  echo "dev accuracy $acc % (predicted $(predicted_counts "$json")), finetune $took s," \
    "from ${FROM:-scratch}, recipe: ${recipe:-as configured}"
done
