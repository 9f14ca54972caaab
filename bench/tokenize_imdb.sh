#!/usr/bin/env bash
# Tokenising all of IMDB (train + test + unsup: 100,000 reviews) with a
# 16k-piece unigram SentencePiece model, on every core: the first run reads,
# encodes and writes the token cache; the second maps the cache. Also one
# core without the cache, and sentencepiece's own spm_encode on the same text.
# Expects a built tree (scripts/build).
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cfg=bench/configs/imdb-tokenize.yaml
export ULMFIT_CACHE=$work/cache

echo "IMDB tokenisation, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
start=$(date +%s.%N)
"$bin" tokenizer train --config $cfg --out "$work/imdb16k.model" 2>/dev/null
echo "train a 16k unigram model: $(echo "$(date +%s.%N) - $start" | awk '{printf "%.1f", $1 - $3}') s"
encode() { "$bin" tokenizer encode --model "$work/imdb16k.model" --config $cfg --split train "$@" 2>/dev/null; }
echo "first run, all cores:  $(encode)"
echo "second run (cache):    $(encode)"
echo "one core, no cache:    $(encode --no-cache --set threads=1)"
if command -v spm_encode >/dev/null; then
  # The same documents as one line each, the way the toolkit normalises them.
  find "$ULMFIT_DATA/imdb/aclImdb/train" "$ULMFIT_DATA/imdb/aclImdb/test" -mindepth 2 -name '*.txt' -print0 |
    xargs -0 awk '{ gsub(/<br *\/?>/, " "); print }' >"$work/all.txt"
  start=$(date +%s.%N)
  spm_encode --model "$work/imdb16k.model" --output_format=id <"$work/all.txt" >/dev/null
  echo "spm_encode (one thread): $(echo "$(date +%s.%N) - $start" | awk '{printf "%.1f", $1 - $3}') s for $(wc -l <"$work/all.txt") lines"
fi
