#!/usr/bin/env bash
# Forward-pass speed of bertserve against PyTorch in one run, per number type (issue 19):
# FinBERT's shape (12 x 768, seeded random weights), THREADS threads each (default 2),
# bertserve `bench --dtype D` against tools/torch_bench.py D (f32; bf16 by
# model.to(torch.bfloat16); int8 by quantize_dynamic on oneDNN), taking turns ROUNDS times
# (default 3) so that a noisy neighbour slows both alike.
#
#   tools/bench_vs_torch.sh        DTYPES="f32 bf16" to choose (default: every dtype bertserve has)
#
# Needs Debian's python3-torch ($PYTHON, default /usr/bin/python3). OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE are unset in the benchmark's commands (OpenBLAS is only bench's sgemm baseline).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-/tmp/bertserve-bench}
threads=${THREADS:-2}
rounds=${ROUNDS:-3}
build=${BUILD_DIR:-$root/build}
python=${PYTHON:-/usr/bin/python3}
cli=$build/bertserve-cli
[ -x "$cli" ] || { echo "build first: cmake -B build && cmake --build build" >&2; exit 1; }
"$python" -c 'import torch' || { echo "needs Debian's python3-torch for $python" >&2; exit 1; }
"$root/tools/bench_prepare.sh" --no-ort
model=$work/finbert-random
dtypes=${DTYPES:-}
if [ -z "$dtypes" ]; then # every dtype this build of bertserve accepts
  for d in f32 bf16 int8; do
    echo '"x"' | "$cli" predict --model "$model" --dtype "$d" >/dev/null 2>&1 && dtypes="$dtypes $d"
  done
fi

echo "host: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs;" \
  "AMX: $(grep -q -w amx_tile /proc/cpuinfo && echo present || echo absent);" \
  "torch $("$python" -c 'import torch; print(torch.__version__)'); $threads threads each; dtypes: $dtypes"
for dtype in $dtypes; do
  : > "$work/ours-$dtype.all"
  : > "$work/torch-$dtype.all"
done
for round in $(seq "$rounds"); do
  for dtype in $dtypes; do
    echo "== round $round/$rounds, $dtype: bertserve"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$threads" \
      "$cli" bench --model "$model" --dtype "$dtype" | tee "$work/ours.txt"
    awk '$1 ~ /^[0-9]+x[0-9]+$/ {print $1, $2}' "$work/ours.txt" >> "$work/ours-$dtype.all"
    echo "== round $round/$rounds, $dtype: PyTorch"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" "$root/tools/torch_bench.py" "$model" "$dtype" "$threads" |
      tee "$work/torch.txt"
    awk '{print $2, $3}' "$work/torch.txt" >> "$work/torch-$dtype.all"
  done
done

median() { # case, file: the median of that case's times
  awk -v c="$1" '$1 == c {print $2}' "$2" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}
echo
# Whether bertserve's bf16/int8 products ran on AMX (its bench prints the engine's AMX status).
echo "bertserve's $(grep -m1 '^amx:' "$work/ours.txt" || echo 'amx: (not printed)')"
echo "== ms per batch, medians of $rounds rounds of p50; ratio = bertserve / PyTorch (below 1.0 is faster)"
printf '%-6s %-8s %10s %10s %8s %14s\n' dtype case ours_ms torch_ms ratio "ours/ours-f32"
for dtype in $dtypes; do
  for case in 1x8 1x32 1x128 1x512 16x32; do
    ours=$(median "$case" "$work/ours-$dtype.all")
    torch_ms=$(median "$case" "$work/torch-$dtype.all")
    f32=$(median "$case" "$work/ours-f32.all" 2>/dev/null || true)
    awk -v d="$dtype" -v c="$case" -v a="$ours" -v t="$torch_ms" -v f="${f32:-0}" \
      'BEGIN {printf "%-6s %-8s %10.2f %10.2f %8.2f %14s\n", d, c, a, t, a / t, (f > 0 ? sprintf("%.2f", a / f) : "-")}'
  done
done
