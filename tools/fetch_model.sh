#!/usr/bin/env bash
# Downloads the files bertserve needs from a public HuggingFace model repository into a model
# directory: config.json; model.safetensors, else pytorch_model.bin converted with
# tools/convert_checkpoint.py (Debian's python3-torch); vocab.txt (WordPiece), else vocab.json +
# merges.txt, else tokenizer.json (byte-level BPE); tokenizer_config.json and
# special_tokens_map.json when the repository has them. Needs curl.
#
#   tools/fetch_model.sh [-r REVISION] [REPO [OUT_DIR]]
#
# REPO defaults to mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis (a
# DistilRoBERTa financial-news sentiment classifier, model_type roberta), OUT_DIR to
# models/<REPO's name>, REVISION to main (a branch, tag or commit; pin a commit for repeatable
# downloads). Files come from $HF_ENDPOINT/REPO/resolve/REVISION/FILE (HF_ENDPOINT as in
# HuggingFace's own tools, default https://huggingface.co). A required file that is missing, or
# any answer other than 200 or 404, fails naming its URL; nothing is written to OUT_DIR then.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
endpoint=${HF_ENDPOINT:-https://huggingface.co}
endpoint=${endpoint%/}

die() { echo "fetch_model: $*" >&2; exit 1; }

rev=main
while getopts r: opt; do
  case $opt in
    r) rev=$OPTARG ;;
    *) die "usage: fetch_model.sh [-r REVISION] [REPO [OUT_DIR]]" ;;
  esac
done
shift $((OPTIND - 1))
repo=${1:-mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis}
out=${2:-models/${repo##*/}}
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  die "$out exists and is not empty (files of another model would be read with these)"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# get FILE: downloads it into $tmp; returns 1 if the repository has no such file (404).
get() {
  local url=$endpoint/$repo/resolve/$rev/$1 code
  code=$(curl -sSL --retry 3 -o "$tmp/$1" -w '%{http_code}' "$url") || die "$url: download failed"
  case $code in
    200) echo "fetched $url" ;;
    404) rm -f "$tmp/$1"; return 1 ;;
    *) die "$url: HTTP $code (a private or gated repository, or no such repository?)" ;;
  esac
}
# need FILE: as get, but a missing file is fatal.
need() { get "$1" || die "$endpoint/$repo/resolve/$rev/$1: not found (HTTP 404)"; }

need config.json
if get vocab.txt; then
  tokenizer=(--vocab "$tmp/vocab.txt")
elif get vocab.json; then
  need merges.txt
  tokenizer=(--vocab "$tmp/vocab.json" --merges "$tmp/merges.txt")
else
  need tokenizer.json
  tokenizer=(--tokenizer-json "$tmp/tokenizer.json")
fi
get tokenizer_config.json || true
get special_tokens_map.json || true

if get model.safetensors; then
  mkdir -p "$out"
  mv "$tmp"/* "$out"/
else
  need pytorch_model.bin
  if [ -f "$tmp/tokenizer_config.json" ]; then tokenizer+=(--tokenizer-config "$tmp/tokenizer_config.json"); fi
  "$python" "$here/convert_checkpoint.py" "$tmp/pytorch_model.bin" "$out" --config "$tmp/config.json" \
    "${tokenizer[@]}"
  if [ -f "$tmp/special_tokens_map.json" ]; then cp "$tmp/special_tokens_map.json" "$out"/; fi
fi
echo "$repo@$rev is in $out: build/bertserve-cli predict --model $out"
