#!/usr/bin/env bash
# tools/fetch_model.sh offline: a fake HuggingFace hub (python3 -m http.server on a free loopback
# port, HF_ENDPOINT pointing at it) serves roberta-tiny as REPO/resolve/REVISION/FILE, once with
# model.safetensors + vocab.json + merges.txt, once (revision v1) as a pytorch_model.bin with a
# position_ids buffer + tokenizer.json, to be converted. Each fetched directory must predict
# exactly what the original does (bertserve-cli predict, same JSON lines); a missing file must
# fail naming its URL and leave no directory, as must a hub that does not answer; a non-empty
# OUT_DIR is refused.
# Needs Debian's python3-torch (/usr/bin/python3) for the pytorch_model.bin.
# usage: fetch_model_test.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
shared=${BERTSERVE_SHARED:-$here/../../../shared}
model=$shared/models/roberta-tiny
bpe_json=$shared/golden/tokenizer-bpe/tokenizer.json
for f in "$model/model.safetensors" "$bpe_json"; do
  [ -f "$f" ] || { echo "FAIL: required test asset $f is missing (set BERTSERVE_SHARED)"; exit 1; }
done
fail=0
tmp=$(mktemp -d)
server=
trap 'if [ -n "$server" ]; then kill "$server"; fi; rm -rf "$tmp"' EXIT

# The hub: acme/tiny@main (safetensors), acme/tiny@v1 (pytorch_model.bin), acme/broken@main (no merges.txt).
hub=$tmp/hub
mkdir -p "$hub/acme/tiny/resolve/main" "$hub/acme/tiny/resolve/v1" "$hub/acme/broken/resolve/main"
cp "$model"/{config.json,model.safetensors,vocab.json,merges.txt,tokenizer_config.json,special_tokens_map.json} \
  "$hub/acme/tiny/resolve/main/"
cp "$model"/{config.json,tokenizer_config.json} "$bpe_json" "$hub/acme/tiny/resolve/v1/"
cp "$model"/{config.json,model.safetensors,vocab.json} "$hub/acme/broken/resolve/main/"
/usr/bin/python3 - "$root/tools" "$model/model.safetensors" "$hub/acme/tiny/resolve/v1/pytorch_model.bin" <<'EOF'
import sys
import torch
sys.path.insert(0, sys.argv[1])
from export_onnx import read_safetensors
weights = read_safetensors(sys.argv[2])
weights["roberta.embeddings.position_ids"] = torch.arange(66).unsqueeze(0)
torch.save(weights, sys.argv[3])
EOF

/usr/bin/python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$hub" >"$tmp/server.log" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$tmp/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: http.server did not start: $(cat "$tmp/server.log")"; exit 1; }
export HF_ENDPOINT=http://127.0.0.1:$port

texts=$tmp/texts.jsonl
cat >"$texts" <<'EOF'
"Operating profit rose to EUR 13.1 mn from EUR 8.7 mn."
"Net sales fell 5%."
""
" Hello"
"Profit <pad> rose <mask> again."
"$AAPL +3.2% 📈🚀"
EOF
"$build/bertserve-cli" predict --model "$model" --jsonl <"$texts" >"$tmp/want.jsonl"

for case in main:model.safetensors v1:pytorch_model.bin; do
  rev=${case%%:*} weights=${case#*:} out=$tmp/out-${case%%:*}
  if ! "$root/tools/fetch_model.sh" -r "$rev" acme/tiny "$out" >"$tmp/log" 2>&1; then
    echo "FAIL $rev: fetch_model.sh failed:"; cat "$tmp/log"; fail=1; continue
  fi
  if ! grep -q "$HF_ENDPOINT/acme/tiny/resolve/$rev/$weights" "$tmp/log"; then
    echo "FAIL $rev: $weights not fetched:"; cat "$tmp/log"; fail=1
  fi
  if "$build/bertserve-cli" predict --model "$out" --jsonl <"$texts" >"$tmp/got.jsonl" &&
     cmp -s "$tmp/want.jsonl" "$tmp/got.jsonl"; then
    echo "ok $rev ($weights): $(cd "$out" && echo *): predictions identical to the original's"
  else
    echo "FAIL $rev: predictions differ from the original's:"; diff "$tmp/want.jsonl" "$tmp/got.jsonl" || true; fail=1
  fi
done

# expect_fail NAME WANT_IN_STDERR ARGS...: fetch_model.sh must fail, say WANT, and leave no directory
expect_fail() {
  local name=$1 want=$2 out=$tmp/out-$1
  shift 2
  if "$root/tools/fetch_model.sh" "$@" "$out" >"$tmp/log" 2>&1; then
    echo "FAIL $name: succeeded"; fail=1
  elif ! grep -qF -- "$want" "$tmp/log"; then
    echo "FAIL $name: no \"$want\" in:"; cat "$tmp/log"; fail=1
  elif [ -e "$out" ]; then
    echo "FAIL $name: left $out"; fail=1
  else
    echo "ok $name: $(tail -1 "$tmp/log")"
  fi
}
expect_fail no-merges "$HF_ENDPOINT/acme/broken/resolve/main/merges.txt: not found" acme/broken
expect_fail no-repo "$HF_ENDPOINT/acme/nothing/resolve/main/config.json: not found" acme/nothing
expect_fail no-revision "$HF_ENDPOINT/acme/tiny/resolve/v2/config.json: not found" -r v2 acme/tiny
HF_ENDPOINT=http://127.0.0.1:1 expect_fail no-server "http://127.0.0.1:1/acme/tiny/resolve/main/config.json: download failed" acme/tiny
mkdir -p "$tmp/busy" && touch "$tmp/busy/vocab.txt"
if "$root/tools/fetch_model.sh" acme/tiny "$tmp/busy" >"$tmp/log" 2>&1 || ! grep -q "is not empty" "$tmp/log"; then
  echo "FAIL busy: a non-empty OUT_DIR was not refused:"; cat "$tmp/log"; fail=1
else
  echo "ok busy: $(cat "$tmp/log")"
fi

[ "$fail" = 0 ] && echo "fetch_model_test: all checks passed"
exit "$fail"
