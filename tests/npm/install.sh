#!/usr/bin/env bash
# Installs the pinned npm tools of tests/npm/package.json into DIR (default build/npm) when
# they are missing or the pins changed; prints DIR. Needs npm and the npm registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../build/npm}
command -v npm >/dev/null || { echo "FAIL: npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
if ! cmp -s "$here/package.json" "$dir/package.json" || [ ! -d "$dir/node_modules" ]; then
  cp "$here/package.json" "$dir/package.json"
  rm -f "$dir/package-lock.json"
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2) ||
    { echo "FAIL: npm install in $dir failed" >&2; exit 1; }
fi
cd "$dir" && pwd
