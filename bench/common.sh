# Sourced by the benchmark scripts: runs from the repository root with the
# datasets prepared, and sets $root and $bin (the built ulmfit binary).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export ULMFIT_DATA=${ULMFIT_DATA:-$root/data/datasets}
data/prepare >/dev/null
bin=${BUILD_DIR:-$root/build}/ulmfit

timed() {  # name command...: runs the command (stdout dropped), prints "name: N s"
  local name=$1 start
  shift
  start=$(date +%s)
  "$@" >/dev/null
  echo "$name: $(( $(date +%s) - start )) s"
}

predicted_counts() {  # evaluate.json: "label N ..." per class, the confusion matrix's column sums
  awk '{
    match($0, /"labels":\[[^]]*\]/); n = split(substr($0, RSTART + 10, RLENGTH - 11), label, ",")
    match($0, /"confusion":\[\[[-0-9,\[\]]*\]\]/); body = substr($0, RSTART + 14, RLENGTH - 16)
    rows = split(body, row, /\],\[/)
    for (r = 1; r <= rows; ++r) { split(row[r], cell, ","); for (c = 1; c <= n; ++c) count[c] += cell[c] }
    for (c = 1; c <= n; ++c) { gsub(/"/, "", label[c]); printf "%s%s %d", (c > 1 ? " " : ""), label[c], count[c] }
    print ""
  }' "$1"
}
