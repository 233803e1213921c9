#!/usr/bin/env bash
# The whole test suite: builds (if needed) and runs ctest plus every other check.
#   tests/run.sh              Release build in build/
#   tests/run.sh --sanitize   AddressSanitizer + UBSan build in build-asan/
# The normal pass also runs each libFuzzer target for 30 s (tests/fuzz/fuzz.sh, clang).
# Test assets come from $BERTSERVE_SHARED (default: ../shared beside the project).
# First it installs the Debian packages the build and the tests need that the machine lacks
# (tools/install-deps.sh test: as root or through sudo; nothing to do, and no root needed, when
# they are all there).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tools/install-deps.sh test

build=build
cmake_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build="build-asan"
  # Optimised (-O2 -g): the GEMM kernels at -O0 would make the suite take many minutes.
  cmake_args=(-DBERTSERVE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  # Leaks are errors; abort on the first UBSan report.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

echo "== build ($build)"
cmake -B "$build" -S . "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"

echo "== ctest ($build)"
(cd "$build" && ctest --output-on-failure -j "$(nproc)")

# The soak (tests/daemon/soak.py): SOAK_SECONDS of mixed good and bad traffic at 64 connections; the
# README's reliability section has the long-run command.
soak_seconds=${SOAK_SECONDS:-60}
[ "$build" = "build" ] || soak_seconds=${SOAK_SECONDS:-30}
echo "== soak ($build, $soak_seconds s)"
SOAK_SECONDS=$soak_seconds python3 tests/daemon/soak.py "$build"

if [ "$build" = build ]; then
  # libFuzzer builds its own instrumented tree (build-fuzz/); once per CI run is enough.
  echo "== fuzz"
  tests/fuzz/fuzz.sh 30
fi

echo "== shellcheck"
command -v shellcheck >/dev/null || { echo "FAIL: shellcheck is not installed (apt-get install shellcheck)"; exit 1; }
git ls-files '*.sh' .ci/run | xargs shellcheck

echo "== repository hygiene"
# Weights and data belong in the shared assets, never in the project.
big=$(git ls-files -z | xargs -0 -r du -k | awk '$1 > 1024 {print $2}')
[ -z "$big" ] || { echo "FAIL: files over 1 MB are tracked: $big"; exit 1; }

# The deployment checks run once, in the normal build: they test the image and the manifests,
# which the sanitizer build does not change. Each fails (never skips) when a tool is missing.
if [ "$build" = build ]; then
  echo "== container"
  tests/deploy/container_test.sh "$build"
  echo "== k8s"
  tests/deploy/k8s_test.sh "$build"
  echo "== monitoring"
  tests/deploy/monitoring_test.sh "$build"
  echo "== jenkinsfile"
  tests/deploy/jenkinsfile_test.sh
fi

echo "== all checks passed ($build)"
