#!/usr/bin/env bash
# Issue 16's repeatability checks, on a machine kept busy by stress-ng --cpu 2:
#  1. two fresh runs of bench/configs/repeat-lm.yaml (precision: auto, a new
#     user cache), one idle and one under load: their per-step losses must be equal;
#  2. with REPEAT_TESTS=N (default 20): the resume and repeatability tests of
#     each build in BUILD_DIRS (default: build) N times in a row under load.
#   bench/repeat_under_load.sh                      BUILD_DIRS="build build-sanitize" REPEAT_TESTS=20
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
command -v stress-ng >/dev/null || { echo "repeat_under_load: needs stress-ng (apt-get install stress-ng)" >&2; exit 2; }
work=$(mktemp -d)
trap 'pkill -P $$ stress-ng 2>/dev/null || true; rm -rf "$work"' EXIT
export ULMFIT_CACHE=$work/cache   # fresh: the first run measures bf16 against fp32
losses() { python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1]) if "\"loss\"" in l])' "$1"; }

"$bin" pretrain --config bench/configs/repeat-lm.yaml --out "$work/idle" 2>"$work/idle.log" >/dev/null
stress-ng --cpu 2 >/dev/null 2>&1 &
sleep 2
"$bin" pretrain --config bench/configs/repeat-lm.yaml --out "$work/busy" 2>"$work/busy.log" >/dev/null
for run in idle busy; do
  echo "$run: $(grep -m1 -o "precision [a-z0-9]*" "$work/$run.log"); $(grep -m1 -o "threads: .*" "$work/$run.log")"
done
if [[ $(losses "$work/idle/metrics.jsonl") == "$(losses "$work/busy/metrics.jsonl")" ]]; then
  echo "per-step losses: identical ($(grep -c '"loss"' "$work/idle/metrics.jsonl") steps)"
else
  echo "per-step losses: DIFFER"; status=1
fi

for build in ${BUILD_DIRS:-build}; do
  start=$(date +%s)
  if (cd "$build" && ctest -R "Resume|Interrupts|SameSeedSameLosses" --repeat until-fail:"${REPEAT_TESTS:-20}" \
        >"$work/ctest.log" 2>&1); then
    echo "$build: resume and repeatability tests passed ${REPEAT_TESTS:-20} times in a row under load ($(( $(date +%s) - start )) s)"
  else
    echo "$build: FAILED under load"; tail -30 "$work/ctest.log"; status=1
  fi
done
exit "${status:-0}"
