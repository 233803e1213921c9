#!/usr/bin/env bash
# Tokenizer throughput against HuggingFace tokenizers (npm `tokenizers`, the Rust library the
# golden files were made with) in one run, on every Financial PhraseBank sentence:
#   tools/bench_tokenizer_vs_hf.sh     (after the build; BUILD_DIR=... for another build)
# npm installs tokenizers into $BENCH_DIR/npm-tokenizers on first use.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${BERTSERVE_SHARED:-$root/../shared}
build=${BUILD_DIR:-$root/build}
work=${BENCH_DIR:-/tmp/bertserve-bench}
data=$shared/data/financial_phrasebank/Sentences_50Agree.txt
mkdir -p "$work/npm-tokenizers"
[ -d "$work/npm-tokenizers/node_modules/tokenizers" ] ||
  (cd "$work/npm-tokenizers" && npm install --silent tokenizers@0.23.2 >/dev/null)

ours=$("$build/tokenizer-bench" "$shared/models/finsent-mini" "$data")
echo "$ours"
hf=$(NODE_PATH=$work/npm-tokenizers/node_modules node "$root/tools/tokenizer_bench_hf.js" \
  "$shared/golden/tokenizer/tokenizer.json" "$data")
echo "$hf"
rate=$(echo "$ours" | awk '/sentences\/s/ {print $1}')
echo "$hf" | awk -v r="$rate" '{printf "bertserve / %s: %.1fx the sentences/s\n", $1, r / $2}'
