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
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(" ".join("%s %d" % (name, sum(row[j] for row in r["confusion"])) for j, name in enumerate(r["labels"])))' "$1"
}
