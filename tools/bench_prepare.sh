#!/usr/bin/env bash
# The assets the benchmarks share, made once into $BENCH_DIR (default /tmp/bertserve-bench):
# a FinBERT-shaped model with seeded random weights (finbert-random/; speed does not depend on
# the values), its ONNX export (finbert.onnx; needs Debian's python3-torch, $PYTHON) and
# onnxruntime-node (npm/; ONNXRUNTIME_NODE_INSTALL=skip keeps its installer from fetching GPU
# providers from nuget.org, which an offline machine cannot reach).
#   tools/bench_prepare.sh [--no-ort]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${BERTSERVE_SHARED:-$root/../shared}
work=${BENCH_DIR:-/tmp/bertserve-bench}
build=${BUILD_DIR:-$root/build}
[ -x "$build/make-random-model" ] || { echo "build first: cmake -B build && cmake --build build" >&2; exit 1; }
mkdir -p "$work/npm"
model=$work/finbert-random
[ -f "$model/model.safetensors" ] || "$build/make-random-model" "$shared/models/finbert/config.json" "$model" 42
[ "${1:-}" = "--no-ort" ] && exit 0
[ -f "$work/finbert.onnx" ] || "${PYTHON:-/usr/bin/python3}" "$root/tools/export_onnx.py" "$model" "$work/finbert.onnx"
[ -d "$work/npm/node_modules/onnxruntime-node" ] ||
  (cd "$work/npm" && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent onnxruntime-node >/dev/null)
