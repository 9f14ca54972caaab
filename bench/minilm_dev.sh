#!/usr/bin/env bash
# Tunes the MiniLM fine-tuning recipe on the movie-disjoint dev split of
# bench/finetune_dev.sh, starting from the imported all-MiniLM-L6-v2 unless
# FROM names another run. Each argument is one recipe: a quoted list of config
# overrides ("" = configs/imdb-minilm-classifier.yaml as it is).
#   bench/minilm_dev.sh "" "train.stage_lrs=[2.0e-3,2.0e-4]"
#   FROM=runs/minilm/adapt bench/minilm_dev.sh ""     start from another run
#   RUNS=runs/minilm-dev2 DEV=2000 bench/minilm_dev.sh "seed=43"
# Expects a built tree; runs go to $RUNS (default runs/minilm-dev).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
export RUNS=${RUNS:-runs/minilm-dev}
if [[ -z ${FROM:-} ]]; then
  mkdir -p "$RUNS"
  "$bin" import --from "$ULMFIT_DATA/models/all-MiniLM-L6-v2" --out "$RUNS/import" --overwrite >/dev/null 2>&1
  export FROM=$RUNS/import
fi
CONFIG=configs/imdb-minilm-classifier.yaml exec bench/finetune_dev.sh "$@"
