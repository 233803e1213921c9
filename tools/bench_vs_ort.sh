#!/usr/bin/env bash
# Forward-pass speed of bertserve against ONNX Runtime in one run: FinBERT's shape
# (12 x 768, 12 heads, seeded random weights: speed does not depend on the values), fp32,
# the same weights exported to ONNX, THREADS threads each (default 2).
#
#   tools/bench_vs_ort.sh     (after `cmake -B build && cmake --build build`; BUILD_DIR=... for another)
#
# Needs Debian's python3-torch (for the ONNX export) and node + npm: tools/bench_prepare.sh
# makes the model, its export and the npm install in $BENCH_DIR (default /tmp/bertserve-bench).
# bertserve runs with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (OpenBLAS picks its kernel,
# as on a user's machine; it is only the baseline sgemm) and once with the environment as it
# is. ROUNDS (default 3) alternating rounds of bertserve and ORT.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/bertserve-bench}
threads=${THREADS:-2}
build=${BUILD_DIR:-$root/build}
cli=$build/bertserve-cli
[ -x "$cli" ] || { echo "build first: cmake -B build && cmake --build build" >&2; exit 1; }
"$root/tools/bench_prepare.sh"
model=$work/finbert-random
ort_version=$(node -e "console.log(require('$work/npm/node_modules/onnxruntime-node/package.json').version)")

# The two engines take turns, ROUNDS times, so that a noisy neighbour slows both alike; each
# figure below is the median over the rounds of that engine's p50.
rounds=${ROUNDS:-3}
: > "$work/ours.all"
: > "$work/ort.all"
for round in $(seq "$rounds"); do
  echo "== round $round/$rounds: bertserve, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$threads" "$cli" bench --model "$model" |
    tee "$work/ours.txt"
  awk '$1 ~ /^[0-9]+x[0-9]+$/ {print $1, $2}' "$work/ours.txt" >> "$work/ours.all"
  echo "== round $round/$rounds: ONNX Runtime $ort_version (onnxruntime-node), $threads threads"
  NODE_PATH=$work/npm/node_modules node "$root/tools/ort_bench.js" "$work/finbert.onnx" "$threads" | tee "$work/ort.txt"
  awk '{print $2, $3}' "$work/ort.txt" >> "$work/ort.all"
done
echo
echo "== bertserve, environment as it is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
OPENBLAS_NUM_THREADS="$threads" "$cli" bench --model "$model" | tee "$work/ours-env.txt"
echo
median() { # case, file: the median of that case's times
  awk -v c="$1" '$1 == c {print $2}' "$2" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
round_ratios() { # case: that case's ratio within each round (the engines' p50s of the same round), sorted
  awk -v c="$1" 'FNR == 1 {f++} $1 == c {t[f, ++n[f]] = $2}
    END {for (i = 1; i <= n[1] && i <= n[2]; i++) print t[1, i] / t[2, i]}' "$work/ours.all" "$work/ort.all" | sort -g
}
echo "== ratio: bertserve time / ONNX Runtime time (below 1.0 is faster): medians of $rounds rounds of p50 ms,"
echo "   and the median and range of the ratios taken within each round (the fairer figure on a noisy machine)"
printf '%-8s %10s %10s %8s %18s %14s %8s\n' case ours_ms ort_ms ratio "per round (range)" ours_env_ms ratio
while read -r _ case _; do
  ours=$(median "$case" "$work/ours.all")
  ort_ms=$(median "$case" "$work/ort.all")
  env_ms=$(awk -v c="$case" '$1 == c {print $2}' "$work/ours-env.txt")
  per_round=$(round_ratios "$case" | awk '{v[NR] = $1} END {printf "%.2f (%.2f-%.2f)", v[int((NR + 1) / 2)], v[1], v[NR]}')
  awk -v c="$case" -v a="$ours" -v o="$ort_ms" -v e="$env_ms" -v r="$per_round" \
    'BEGIN {printf "%-8s %10.2f %10.2f %8.2f %18s %14.2f %8.2f\n", c, a, o, a / o, r, e, e / o}'
done < "$work/ort.txt"
