#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/: coverage + ASan + UBSan) and runs each,
# one at a time and single-job, on the seed corpora: the golden cases (tests/fuzz/make_corpus.py,
# from $BERTSERVE_SHARED, default ../shared beside the project), the committed seeds and every
# past crash. Any crash, sanitizer report, leak or failed property fails the script; libFuzzer
# leaves the input in build-fuzz/artifacts/TARGET/ (copy it to tests/fuzz/regressions/TARGET/
# with the fix).
#   tests/fuzz/fuzz.sh [SECONDS] [TARGET...]    each target for SECONDS (default 30)
#   tests/fuzz/fuzz.sh --runs N [TARGET...]     each target for N executions (the long run)
# TARGET is tokenizer, tokenizer_bpe, request, safetensors or config (default: all five).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

limit=(-max_total_time=30)
if [ "${1:-}" = "--runs" ]; then
  [[ "${2:-}" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS | --runs N] [TARGET...]" >&2; exit 2; }
  limit=(-runs="$2")
  shift 2
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  limit=(-max_total_time="$1")
  shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokenizer tokenizer_bpe request safetensors config)

for tool in clang python3 cmake; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (see .ci/run)"; exit 1; }
done
rt=$(clang -print-file-name="libclang_rt.fuzzer-$(uname -m).a")
[ -f "$rt" ] || { echo "FAIL: clang has no libFuzzer runtime (apt-get install libclang-rt-14-dev)"; exit 1; }
shared=${BERTSERVE_SHARED:-$root/../shared}
[ -d "$shared" ] || { echo "FAIL: shared assets $shared not found (set BERTSERVE_SHARED)"; exit 1; }
export BERTSERVE_SHARED=$shared

build="build-fuzz"
CC=clang cmake -B "$build" -S . -DBERTSERVE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
python3 tests/fuzz/make_corpus.py "$shared" "$build/seed-corpus"

failed=()
for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/fuzz_$t
  [ -x "$exe" ] || { echo "FAIL: no fuzz target $t"; exit 1; }
  corpus=$build/corpus/$t        # grows across runs: new inputs land here
  artifacts=$build/artifacts/$t
  log=$build/fuzz-$t.log
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz $t (${limit[*]})"
  if "$exe" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$corpus" "$build/seed-corpus/$t" \
       "tests/fuzz/seeds/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
    echo "fuzz $t: ${runs:-?} executions in ${secs:-?} s ($(( ${runs:-0} / (${secs:-0} > 0 ? secs : 1) )) per second), corpus $(find "$corpus" -type f | wc -l) files"
  else
    tail -n 60 "$log"
    echo "FAIL: fuzz $t crashed; the input is in $artifacts/ (full log: $log)"
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "FAIL: fuzz targets that crashed: ${failed[*]}"; exit 1; }
echo "== fuzz: no crash in ${targets[*]}"
