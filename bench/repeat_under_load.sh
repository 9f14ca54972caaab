#!/usr/bin/env bash
# Issue 16's repeatability checks, on a machine kept busy by stress-ng --cpu 2:
#  1. two fresh runs of bench/configs/repeat-lm.yaml (precision: auto, a new
#     user cache), one idle and one under load: their per-step losses must be equal;
#  2. the resume and repeatability tests REPEAT_TESTS (default 20) times in a
#     row under load, in each build BUILDS names (default: normal).
#   BUILDS="normal sanitized" bench/repeat_under_load.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
command -v stress-ng >/dev/null || { echo "repeat_under_load: needs stress-ng (apt-get install stress-ng)" >&2; exit 2; }
work=$(mktemp -d)
trap 'pkill -P $$ stress-ng 2>/dev/null || true; rm -rf "$work"' EXIT
losses() { python3 -c 'import json,sys; print([json.loads(l)["loss"] for l in open(sys.argv[1]) if "\"loss\"" in l])' "$1"; }

# A fresh cache for these two runs (only): the first measures bf16 against fp32.
ULMFIT_CACHE=$work/cache "$bin" pretrain --config bench/configs/repeat-lm.yaml --out "$work/idle" 2>"$work/idle.log" >/dev/null
stress-ng --cpu 2 >/dev/null 2>&1 &
sleep 2
ULMFIT_CACHE=$work/cache "$bin" pretrain --config bench/configs/repeat-lm.yaml --out "$work/busy" 2>"$work/busy.log" >/dev/null
for run in idle busy; do
  echo "$run: $(grep -m1 -o "precision [a-z0-9]*" "$work/$run.log"); $(grep -m1 -o "threads: .*" "$work/$run.log")"
done
if [[ $(losses "$work/idle/metrics.jsonl") == "$(losses "$work/busy/metrics.jsonl")" ]]; then
  echo "per-step losses: identical ($(grep -c '"loss"' "$work/idle/metrics.jsonl") steps)"
else
  echo "per-step losses: DIFFER"; status=1
fi

# The tests, REPEAT_TESTS times in a row each, in each of BUILDS: normal (build/)
# and sanitized (the ASan/UBSan build, through scripts/sanitize, which sets the
# sanitizers' options).
tests=(-R "Resume|Interrupts|SameSeedSameLosses" --repeat until-fail:"${REPEAT_TESTS:-20}")
runs=()
for build in ${BUILDS:-normal}; do
  case $build in
    normal) runs+=("normal:(cd build && ctest ${tests[*]@Q})") ;;
    sanitized) runs+=("sanitized:scripts/sanitize ${tests[*]@Q}") ;;
    *) echo "repeat_under_load: BUILDS names normal and/or sanitized, not $build" >&2; exit 2 ;;
  esac
done
for entry in "${runs[@]}"; do
  name=${entry%%:*}
  start=$(date +%s)
  if bash -c "${entry#*:}" >"$work/ctest.log" 2>&1; then
    echo "$name build: resume and repeatability tests passed ${REPEAT_TESTS:-20} times in a row under load" \
      "($(grep -c ' Passed' "$work/ctest.log") passes, $(( $(date +%s) - start )) s)"
  else
    echo "$name build: FAILED under load"; tail -30 "$work/ctest.log"; status=1
  fi
done
exit "${status:-0}"
