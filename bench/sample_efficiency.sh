#!/usr/bin/env bash
# How accuracy grows with the number of labels (ULMFiT's Figure 3 on this
# machine): each arm fine-tuned on 100, 300, 1,000 and 3,000 labelled IMDB
# training reviews (or LABELS), every run scored on the same 5,000 balanced
# test reviews. Each config draws its reviews with its own seed.
#   bench/sample_efficiency.sh                       every arm, 100 300 1000 3000
#   ARMS=ngrams LABELS="100 25000" bench/sample_efficiency.sh
#   THREADS=1 ARMS="scratch transfer" bench/sample_efficiency.sh   one thread, beside other work
#   ARMS=transfer FROM_LM=runs/budget/lm-adapt TRANSFER_CONFIG=bench/configs/budget-classifier.yaml \
#     bench/sample_efficiency.sh     the two-hour LM of bench/transfer_budget.sh with its classifier recipe
# Arms:
#   transfer  the project's own ULMFiT path: an AWD-LSTM LM pretrained on
#             WikiText-2 and adapted to unlabelled IMDB reviews (the
#             quickstart's configs, trained once into $RUNS/lm; FROM_LM=RUN
#             reuses an adapted LM instead), then the gradual-unfreezing
#             classifier of configs/quickstart-classifier.yaml
#             (TRANSFER_CONFIG=FILE names another classifier config);
#   scratch   configs/quickstart-classifier.yaml without --from, whatever
#             TRANSFER_CONFIG says, so finetune trains it with its
#             from-scratch recipe (scripts/lib/scratch_config.sh);
#   ngrams    the tf-idf bag of words and bigrams, configs/imdb-ngrams.yaml;
#   minilm    the imported all-MiniLM-L6-v2, configs/imdb-minilm-classifier.yaml.
# The AWD-LSTM and n-grams configs hold a tenth of their labels aside to
# validate; n-grams keeps its best epoch there, the AWD-LSTM classifier its
# last (train.keep). The MiniLM recipe trains on all of them and keeps the last.
# Each run appends a JSON line to $RUNS/results.jsonl (default
# runs/sample-efficiency); the table at the end, and the plot
# $RUNS/sample-efficiency.svg (accuracy against labels, log scale), read every
# line there. Times are wall seconds of each finetune and evaluate; the
# transfer arm's LM stages are timed once, in $RUNS/lm/times.json.
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
runs=${RUNS:-runs/sample-efficiency}
arms=${ARMS:-ngrams scratch transfer minilm}
labels=${LABELS:-100 300 1000 3000}
mkdir -p "$runs"
train_threads=() eval_threads=()
if [[ -n ${THREADS:-} ]]; then train_threads=(--set "threads=$THREADS"); eval_threads=(--threads "$THREADS"); fi
echo "sample efficiency: arms $arms, labels $labels, threads ${THREADS:-all};" \
  "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One training command of ulmfit (its arguments after the binary), its log in
# the first argument; on failure the log's end is shown and the script stops.
train_logged() {
  local log=$1
  shift
  "$bin" "$@" "${train_threads[@]}" >/dev/null 2>"$log" || { tail -3 "$log" >&2; exit 1; }
}

# The transfer arm's LM, trained once per $RUNS: the quickstart's pretrain on
# WikiText-2 and adaptation to unlabelled IMDB reviews. Prints its run.
transfer_lm() {
  local lm=$runs/lm
  if [[ ! -f $lm/adapt/meta.yaml ]]; then
    mkdir -p "$lm"
    local t0 t1 t2
    t0=$(ms)
    train_logged "$lm/pretrain.log" pretrain --config configs/quickstart-pretrain.yaml --out "$lm/pretrain" --overwrite
    t1=$(ms)
    train_logged "$lm/adapt.log" adapt --config configs/quickstart-adapt.yaml --from "$lm/pretrain" --out "$lm/adapt" \
      --overwrite
    t2=$(ms)
    echo "{\"pretrain_s\": $(( (t1 - t0) / 1000 )), \"adapt_s\": $(( (t2 - t1) / 1000 ))}" >"$lm/times.json"
    echo "transfer LM: $(cat "$lm/times.json")" >&2
  fi
  echo "$lm/adapt"
}

for arm in $arms; do
  from=()
  case $arm in
    minilm)
      config=configs/imdb-minilm-classifier.yaml
      "$bin" import --from "$ULMFIT_DATA/models/all-MiniLM-L6-v2" --out "$runs/minilm-import" --overwrite >/dev/null
      from=(--from "$runs/minilm-import") ;;
    ngrams) config=configs/imdb-ngrams.yaml ;;
    scratch)
      # shellcheck source=../scripts/lib/scratch_config.sh
      source "$root/scripts/lib/scratch_config.sh"
      config=$runs/scratch-classifier.yaml
      scratch_config configs/quickstart-classifier.yaml "$config" ;;
    transfer)
      config=${TRANSFER_CONFIG:-configs/quickstart-classifier.yaml}
      from=(--from "${FROM_LM:-$(transfer_lm)}") ;;
    *) echo "sample_efficiency: unknown arm '$arm' (transfer, scratch, ngrams, minilm)" >&2; exit 2 ;;
  esac
  for n in $labels; do
    out=$runs/$arm-$n
    t0=$(ms)
    train_logged "$runs/$arm-$n.log" finetune --config "$config" "${from[@]}" --out "$out" --overwrite \
      --set "data.train.limit=$n"
    t1=$(ms)
    "$bin" evaluate --model "$out" --data "$ULMFIT_DATA/imdb/aclImdb/test" --limit 5000 --balanced --json \
      "${eval_threads[@]}" >"$out/test-eval.json" 2>>"$runs/$arm-$n.log"
    t2=$(ms)
    python3 - "$arm" "$n" "$((t1 - t0))" "$((t2 - t1))" "$out/test-eval.json" >>"$runs/results.jsonl" <<'PY'
import json, sys
arm, n, finetune_ms, evaluate_ms, path = sys.argv[1:]
r = json.load(open(path))
predicted = {name: sum(row[i] for row in r["confusion"]) for i, name in enumerate(r["labels"])}
print(json.dumps({"arm": arm, "labels": int(n), "accuracy": r["accuracy"], "documents": r["documents"],
                  "predicted": predicted, "finetune_s": int(finetune_ms) / 1000, "evaluate_s": int(evaluate_ms) / 1000}))
PY
    tail -1 "$runs/results.jsonl"
  done
done

python3 - "$runs/results.jsonl" "$runs/sample-efficiency.svg" <<'PY'
import json, math, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[(r["arm"], r["labels"])] = r  # the latest run of each arm and size
arms = sorted({a for a, _ in rows})
sizes = sorted({n for _, n in rows})
print("\n| labels | " + " | ".join(arms) + " |")
print("|---|" + "---|" * len(arms))
for n in sizes:
    cells = []
    for a in arms:
        r = rows.get((a, n))
        cells.append("-" if r is None else
                     f"{100 * r['accuracy']:.2f} % ({' / '.join(f'{v:,}' for v in r['predicted'].values())}; "
                     f"fine-tune {r['finetune_s']:.0f} s)")
    print(f"| {n:,} | " + " | ".join(cells) + " |")

# The plot: one line per arm, labels on a log axis.
W, H, L, R, T, B = 560, 360, 60, 120, 20, 50
lo, hi = math.log10(min(sizes)), math.log10(max(sizes))
accs = [100 * r["accuracy"] for r in rows.values()]
ymin, ymax = 5 * math.floor(min(accs) / 5), 5 * math.ceil(max(accs) / 5 + 1e-9)
x = lambda n: L + (W - L - R) * ((math.log10(n) - lo) / (hi - lo) if hi > lo else 0.5)
y = lambda a: H - B - (H - T - B) * (a - ymin) / (ymax - ymin)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>']
for a in range(int(ymin), int(ymax) + 1, 5):
    svg.append(f'<line x1="{L}" x2="{W - R}" y1="{y(a):.1f}" y2="{y(a):.1f}" stroke="#ddd"/>'
               f'<text x="{L - 6}" y="{y(a) + 4:.1f}" text-anchor="end">{a} %</text>')
for n in sizes:
    svg.append(f'<text x="{x(n):.1f}" y="{H - B + 16}" text-anchor="middle">{n:,}</text>')
svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">labelled training reviews (log scale)</text>')
svg.append(f'<text x="14" y="{(T + H - B) / 2}" transform="rotate(-90 14 {(T + H - B) / 2})" text-anchor="middle">'
           'accuracy, 5,000 balanced IMDB test reviews</text>')
colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
legend = []  # (y of the arm's last point, arm, colour), drawn after the lines
for i, a in enumerate(arms):
    pts = sorted((n, 100 * r["accuracy"]) for (arm, n), r in rows.items() if arm == a)
    c = colours[i % len(colours)]
    svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
               + " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in pts) + '"/>')
    svg += [f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3" fill="{c}"/>' for n, v in pts]
    legend.append((y(pts[-1][1]) + 4, a, c))
# Each name beside its line's end, moved down where two ends are closer than a line of text.
text_y = 0.0
for end_y, a, c in sorted(legend):
    text_y = max(end_y, text_y + 14)
    svg.append(f'<text x="{W - R + 8}" y="{text_y:.1f}" fill="{c}">{a}</text>')
svg.append("</svg>")
open(sys.argv[2], "w").write("\n".join(svg) + "\n")
print(f"plot: {sys.argv[2]}")
PY
