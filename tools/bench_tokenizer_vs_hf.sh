#!/usr/bin/env bash
# Tokenizer throughput against HuggingFace tokenizers (npm `tokenizers`, the Rust library the
# golden files were made with) in one run, on every Financial PhraseBank sentence, for WordPiece
# and for byte-level BPE:
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

# WordPiece (finsent-mini, bert-base-uncased) and byte-level BPE (roberta-tiny, GPT-2's merges),
# each against HF's tokenizer.json for the same vocabulary, one after the other in one run.
bench() { # name model_dir tokenizer_json
  local ours hf rate
  ours=$("$build/tokenizer-bench" "$2" "$data")
  echo "$ours"
  hf=$(NODE_PATH=$work/npm-tokenizers/node_modules node "$root/tools/tokenizer_bench_hf.js" "$3" "$data")
  echo "$hf"
  rate=$(echo "$ours" | awk '/sentences\/s/ {print $1}')
  echo "$hf" | awk -v r="$rate" -v name="$1" '{printf "%s: bertserve / %s: %.1fx the sentences/s\n", name, $1, r / $2}'
}
bench wordpiece "$shared/models/finsent-mini" "$shared/golden/tokenizer/tokenizer.json"
bench bpe "$shared/models/roberta-tiny" "$shared/golden/tokenizer-bpe/tokenizer.json"
