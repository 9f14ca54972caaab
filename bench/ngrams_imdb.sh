#!/usr/bin/env bash
# The n-grams baseline on IMDB: configs/imdb-ngrams.yaml (the 1,000 labelled
# training reviews of the other IMDB configs, 100 of them held out to pick the
# epoch), scored on 5,000 balanced test reviews (evaluate --limit 5000 --balanced).
# Prints the fine-tune's wall and CPU time, the test accuracy and how many
# reviews went to each class. Extra arguments go to finetune (e.g. --set
# train.epochs=3).
#   bench/ngrams_imdb.sh [--set key=value ...]
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/ngrams}
mkdir -p "$runs"
echo "ngrams on IMDB, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
/usr/bin/time -f "finetune: %e s wall, %U s user + %S s system CPU" \
  "$bin" finetune --config configs/imdb-ngrams.yaml --out "$runs/clf" --overwrite "$@" 2>"$runs/finetune.log" >/dev/null ||
  { tail -5 "$runs/finetune.log"; exit 1; }
tail -1 "$runs/finetune.log"
grep -o "best epoch [0-9]*: accuracy [0-9.]*" "$runs/finetune.log" | sed 's/^/dev (held-out training reviews): /'
/usr/bin/time -f "evaluate: %e s wall, %U s user CPU" \
  "$bin" evaluate --model "$runs/clf" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced --json \
  >"$runs/test.json" 2>"$runs/evaluate.log"
tail -1 "$runs/evaluate.log"
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print("test (5,000 balanced): accuracy %.2f %%, predicted %s" % (100*m["accuracy"], ", ".join("%s %d" % (name, sum(row[j] for row in m["confusion"])) for j, name in enumerate(m["labels"]))))' "$runs/test.json"
