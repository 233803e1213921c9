#!/usr/bin/env bash
# Fetches the real FinBERT classifier (ProsusAI) and converts it into models/finbert for
# bertserve. For machines that are online; the default model (models/link-default.sh) needs no
# network. Needs curl, sha256sum and Debian's python3-torch (tools/convert_checkpoint.py).
#
#   models/fetch-finbert.sh                 ProsusAI's GitHub repo, pinned commit (Git LFS)
#   models/fetch-finbert.sh --hub REVISION  the HuggingFace hub repo ProsusAI/finbert at a commit
#
# The GitHub copy is checked against the size and sha256 recorded below. From the hub, the
# sha256 the hub publishes for pytorch_model.bin at that revision (its Git LFS oid, from the
# hub's tree API) is checked. config.json, vocab.txt and tokenizer_config.json come from
# $BERTSERVE_SHARED/models/finbert when present (upstream copies), else from the hub.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${BERTSERVE_SHARED:-$here/../../shared}
out=$here/finbert
python=${PYTHON:-/usr/bin/python3}

github_commit=a01b376a3e9509d61953abe34516a96827ae61f4
github_url=https://media.githubusercontent.com/media/ProsusAI/finBERT/$github_commit/models/classifier_model/finbert-sentiment/pytorch_model.bin
github_sha256=83921eb51b734dc4e9188b55be4421ff4210070224d0ae914af533cdc9fd5595
github_size=437988463

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "${1:-}" = "--hub" ]; then
  rev=${2:?usage: fetch-finbert.sh --hub REVISION (a commit of huggingface.co/ProsusAI/finbert)}
  base=https://huggingface.co/ProsusAI/finbert/resolve/$rev
  curl -fsSL "https://huggingface.co/api/models/ProsusAI/finbert/tree/$rev" -o "$tmp/tree.json"
  sha256=$("$python" -c 'import json,sys
for f in json.load(open(sys.argv[1])):
    if f.get("path") == "pytorch_model.bin": print(f["lfs"]["oid"])' "$tmp/tree.json")
  [ -n "$sha256" ] || { echo "fetch-finbert: the hub lists no pytorch_model.bin at $rev" >&2; exit 1; }
  url=$base/pytorch_model.bin
  size=""
else
  url=$github_url sha256=$github_sha256 size=$github_size base=https://huggingface.co/ProsusAI/finbert/resolve/main
fi

echo "fetching $url"
curl -fL --retry 3 -o "$tmp/pytorch_model.bin" "$url"
if [ -n "$size" ] && [ "$(stat -c %s "$tmp/pytorch_model.bin")" != "$size" ]; then
  echo "fetch-finbert: size $(stat -c %s "$tmp/pytorch_model.bin") is not the expected $size" >&2; exit 1
fi
echo "$sha256  $tmp/pytorch_model.bin" | sha256sum -c - >/dev/null ||
  { echo "fetch-finbert: sha256 mismatch (expected $sha256)" >&2; exit 1; }

for f in config.json vocab.txt tokenizer_config.json; do
  if [ -f "$shared/models/finbert/$f" ]; then cp "$shared/models/finbert/$f" "$tmp/$f"
  else curl -fsSL -o "$tmp/$f" "$base/$f"; fi
done
"$python" "$here/../tools/convert_checkpoint.py" "$tmp/pytorch_model.bin" "$out" \
  --config "$tmp/config.json" --vocab "$tmp/vocab.txt" --tokenizer-config "$tmp/tokenizer_config.json"
echo "FinBERT is in $out: build/bertserve-cli predict --model models/finbert"
