#!/usr/bin/env bash
# ctest openapi_lint: docs/openapi.json passes `@redocly/cli lint` (pinned in tests/npm/package.json)
# under docs/redocly.yaml (recommended-strict: any warning fails), and the lint is shown to fail on
# a planted defect, so a linter that passes everything cannot pass this test.
# Usage: openapi_lint.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:?usage: openapi_lint.sh BUILD_DIR}
npm_dir=$("$root/tests/npm/install.sh" "$build/npm") || { echo "FAIL: could not install the npm tools (tests/npm/install.sh)"; exit 1; }
redocly=$npm_dir/node_modules/.bin/redocly
[ -x "$redocly" ] || { echo "FAIL: $redocly is missing after tests/npm/install.sh"; exit 1; }
# No telemetry or update check: CI reaches the npm registry and nothing else.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

if ! "$redocly" lint "$root/docs/openapi.json" --config "$root/docs/redocly.yaml" --format=stylish; then
  echo "FAIL: docs/openapi.json does not pass redocly lint"
  exit 1
fi

# The planted defect: a response example that contradicts its schema (/health's status "ok").
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$root/docs/openapi.json" "$tmp/openapi.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["example"] = {"status": 42}
json.dump(doc, open(sys.argv[2], "w"))
PY
if "$redocly" lint "$tmp/openapi.json" --config "$root/docs/redocly.yaml" --format=stylish >"$tmp/out" 2>&1; then
  cat "$tmp/out"
  echo "FAIL: redocly lint passed a description whose /health example contradicts its schema"
  exit 1
fi
grep -q "no-invalid-media-type-examples" "$tmp/out" ||
  { cat "$tmp/out"; echo "FAIL: the planted defect failed the lint for another reason"; exit 1; }
echo "PASS: docs/openapi.json lints clean, and a planted bad example fails the lint"
