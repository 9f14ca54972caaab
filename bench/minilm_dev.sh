#!/usr/bin/env bash
# Tunes the MiniLM fine-tuning recipe without touching the test reviews: the
# 25,000 labelled training reviews are split by movie into a training pool
# (even IMDB title numbers) and a dev pool (odd ones), so that, as with the
# test reviews, no dev review is about a movie the classifier trained on.
# finetune draws its balanced labels from the first, DEV (default 1,000)
# balanced reviews of the second score it. Each argument is one recipe: a
# quoted list of config overrides ("" = configs/imdb-minilm-classifier.yaml
# as it is).
#   bench/minilm_dev.sh "" "train.stage_lrs=[2.0e-3,2.0e-4]"
#   FROM=runs/minilm/adapt bench/minilm_dev.sh ""     start from another run
#   RUNS=runs/minilm-dev2 DEV=2000 bench/minilm_dev.sh "seed=43"
# Expects a built tree; runs go to $RUNS (default runs/minilm-dev).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# Line i of urls_LABEL.txt names the movie of review i. Before 2026-12-03 the
# split went by review id parity, which put reviews of one movie on both sides.
split="$ULMFIT_DATA/imdb/dev-split-by-movie"
if [[ ! -f "$split/.complete" ]]; then
  rm -rf "$split"
  for label in neg pos; do
    mkdir -p "$split/pool/$label" "$split/dev/$label"
    mapfile -t urls <"$ULMFIT_DATA/imdb/aclImdb/train/urls_$label.txt"
    for f in "$ULMFIT_DATA/imdb/aclImdb/train/$label"/*.txt; do
      id=$(basename "$f"); id=${id%%_*}
      title=${urls[id]#*/title/tt}; title=${title%%/*}
      if (( 10#$title % 2 == 0 )); then ln -s "$f" "$split/pool/$label/"; else ln -s "$f" "$split/dev/$label/"; fi
    done
  done
  touch "$split/.complete"
fi
runs=${RUNS:-runs/minilm-dev}
mkdir -p "$runs"
from=${FROM:-$runs/import}
[[ -n ${FROM:-} ]] || "$bin" import --from "$ULMFIT_DATA/models/all-MiniLM-L6-v2" --out "$from" --overwrite >/dev/null 2>&1
i=0
for recipe in "$@"; do
  i=$((i + 1))
  sets=(--set "data.train.path=$split/pool")
  for s in $recipe; do sets+=(--set "$s"); done
  start=$(date +%s)
  "$bin" finetune --config configs/imdb-minilm-classifier.yaml --from "$from" --out "$runs/r$i" --overwrite "${sets[@]}" \
    >/dev/null 2>"$runs/r$i.log"
  took=$(( $(date +%s) - start ))
  "$bin" evaluate --model "$runs/r$i" --data "$split/dev" --limit "${DEV:-1000}" --balanced --json >"$runs/r$i-dev.json" 2>/dev/null
  acc=$(python3 - "$runs/r$i-dev.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["confusion"]
print("%.2f %% (predicted neg %d, pos %d)" % (100 * r["accuracy"], c[0][0] + c[1][0], c[0][1] + c[1][1]))
PY
)
  echo "dev accuracy $acc, finetune $took s, from $from, recipe: ${recipe:-as configured}"
done
