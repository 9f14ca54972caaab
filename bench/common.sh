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

# The 25,000 labelled training reviews split by movie: a training pool (even
# IMDB title numbers) and a dev pool (odd ones), so that, as with the test
# reviews, no dev review is about a movie a classifier trained on. Line i of
# urls_LABEL.txt names the movie of review i. Before 2026-12-03 the split went
# by review id parity, which put reviews of one movie on both sides.
movie_split_dir="$ULMFIT_DATA/imdb/dev-split-by-movie"
make_movie_split() {  # links $movie_split_dir/{pool,dev}/{neg,pos}/*.txt once
  local label f id title urls
  # Two instances started together would each build the split and delete the
  # other's links (it happened on 2026-12-04): the first builds, the others wait.
  exec 9>"$movie_split_dir.lock"
  flock 9
  if [[ ! -f "$movie_split_dir/.complete" ]]; then
    rm -rf "$movie_split_dir"
    for label in neg pos; do
      mkdir -p "$movie_split_dir/pool/$label" "$movie_split_dir/dev/$label"
      mapfile -t urls <"$ULMFIT_DATA/imdb/aclImdb/train/urls_$label.txt"
      for f in "$ULMFIT_DATA/imdb/aclImdb/train/$label"/*.txt; do
        id=$(basename "$f"); id=${id%%_*}
        title=${urls[id]#*/title/tt}; title=${title%%/*}
        if (( 10#$title % 2 == 0 )); then
          ln -s "$f" "$movie_split_dir/pool/$label/"
        else
          ln -s "$f" "$movie_split_dir/dev/$label/"
        fi
      done
    done
    touch "$movie_split_dir/.complete"
  fi
  flock -u 9
}
