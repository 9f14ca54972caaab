#!/usr/bin/env bash
# `ulmfit serve` under load, against `predict` on the same reviews: wrk on
# 127.0.0.1 posts one IMDB test review per /v1/classify request at each
# concurrency for DURATION seconds and reports requests/s, p50/p99 latency,
# errors and non-2xx answers, the server's resident memory before and after,
# its mean batch size, and documents/s at the highest concurrency as a share of
# predict's documents/s on the same reviews.
#   bench/serve_load.sh RUN_DIR          a classifier run (bench/minilm_imdb.sh writes runs/minilm/clf-1000)
#   DURATION=60 WARMUP=30 CONCURRENCY="1 8 64" REVIEWS=1000 SERVE_FLAGS="--max-batch 64" bench/serve_load.sh RUN_DIR
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=../scripts/lib/apt.sh
source "$root/scripts/lib/apt.sh"
ensure_debian_packages wrk
run=${1:?usage: bench/serve_load.sh RUN_DIR}
duration=${DURATION:-60}
reviews=${REVIEWS:-1000}
work=$(mktemp -d)
server=""
cleanup() { [[ -n $server ]] && kill -9 "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# REVIEWS balanced test reviews, the same ones for predict (a line each) and wrk (a body each).
python3 - "$ULMFIT_DATA/imdb/aclImdb/test" "$reviews" "$work" <<'PY'
import json, os, random, sys
root, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
texts = []
for label in ("neg", "pos"):
    files = sorted(os.listdir(os.path.join(root, label)))
    random.Random(42).shuffle(files)
    texts += [open(os.path.join(root, label, f), encoding="utf-8").read().replace("\n", " ") for f in files[: n // 2]]
random.Random(7).shuffle(texts)
with open(os.path.join(work, "reviews.txt"), "w", encoding="utf-8") as f:
    f.writelines(t + "\n" for t in texts)
with open(os.path.join(work, "bodies.jsonl"), "w", encoding="utf-8") as f:
    f.writelines(json.dumps({"texts": [t]}) + "\n" for t in texts)
PY
echo "serve under load: $run, $reviews reviews, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

start=$(date +%s.%N)
"$bin" predict --model "$run" --input "$work/reviews.txt" --output "$work/predicted.jsonl" 2>/dev/null
predict_rate=$(awk -v n="$reviews" -v s="$(date +%s.%N)" -v t="$start" 'BEGIN { printf "%.1f", n / (s - t) }')
echo "predict: $predict_rate reviews/s"

# shellcheck disable=SC2086  # SERVE_FLAGS is a list of flags
"$bin" serve --model "$run" --port 0 ${SERVE_FLAGS:-} >"$work/address" 2>"$work/serve.log" &
server=$!
for _ in $(seq 600); do [[ -s $work/address ]] && break; sleep 0.1; done
url=$(head -1 "$work/address")
[[ -n $url ]] || { echo "serve did not start:"; cat "$work/serve.log"; exit 1; }
rss() { awk '/VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }
peak_rss() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$server/status"; }

# Warm-up at the highest concurrency: the first (and largest) batches
# allocate what later ones reuse, so growth after it would be a leak.
levels=${CONCURRENCY:-1 8 64}
BODIES="$work/bodies.jsonl" wrk -t 2 -c "${levels##* }" -d "${WARMUP:-30}s" --timeout 30s -s bench/serve_load.lua "$url" >/dev/null
# Both readings 2 s after the load stops, once the server has answered
# everything and handed its freed activations back (it does after 0.5 s idle).
sleep 2
rss_before=$(rss)
metrics() { curl -s "$url/metrics"; }
documents_before=$(metrics | awk '/^ulmfit_documents_total/ { print $2 }')
echo "| concurrency | requests/s | p50 | p99 | errors | non-2xx |"
echo "|---|---|---|---|---|---|"
last_rate=0
for c in $levels; do
  threads=$(( c < 2 ? 1 : 2 ))
  BODIES="$work/bodies.jsonl" wrk -t "$threads" -c "$c" -d "${duration}s" --timeout 30s --latency -s bench/serve_load.lua \
    "$url" >"$work/wrk-$c.txt"
  awk -v c="$c" '
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
    /Socket errors/ { errors = $0; sub(/.*Socket errors: */, "", errors) }
    /Non-2xx/ { non2xx = $NF }
    END { printf "| %d | %s | %s | %s | %s | %s |\n", c, rps, p50, p99, (errors == "" ? "0" : errors), (non2xx == "" ? 0 : non2xx) }
  ' "$work/wrk-$c.txt"
  last_rate=$(awk '/Requests\/sec/ { print $2 }' "$work/wrk-$c.txt")
done
sleep 2
rss_after=$(rss)
metrics >"$work/metrics.txt"
documents=$(awk '/^ulmfit_documents_total/ { print $2 }' "$work/metrics.txt")
awk -v b="$rss_before" -v a="$rss_after" -v p="$(peak_rss)" \
  'BEGIN { printf "resident memory: %d MiB after warm-up, %d MiB after the load (%+.1f %%); peak %d MiB\n", b, a, 100 * (a - b) / b, p }'
awk '/^ulmfit_batch_documents_sum/ { s = $2 } /^ulmfit_batch_documents_count/ { n = $2 }
     END { printf "batches: %d, %.1f documents each on average\n", n, s / n }' "$work/metrics.txt"
echo "documents classified during the load: $(( documents - documents_before ))"
awk -v r="$last_rate" -v p="$predict_rate" 'BEGIN { printf "highest concurrency: %.1f reviews/s = %.0f %% of predict'"'"'s %.1f\n", r, 100 * r / p, p }'
kill -TERM "$server"
wait "$server" && echo "serve: SIGTERM, exit 0" || echo "serve: exit $?"
server=""
