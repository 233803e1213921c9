#!/usr/bin/env bash
# Installs, through apt-get, the Debian 12 packages bertserve needs and this machine lacks;
# says what it installs, and does nothing when all are there (no root needed then).
#   tools/install-deps.sh build   the compiler, CMake and the four libraries (tools/serve.sh)
#   tools/install-deps.sh test    and every tool the test suite uses (tests/run.sh)
# As root, or through sudo; otherwise it names the missing packages and exits 1.
set -euo pipefail
what=${1:-build}

build_packages=(build-essential cmake pkg-config libopenblas-dev libutf8proc-dev libcjson-dev libmicrohttpd-dev)
# python3-torch: the checkpoint converter's test; prometheus: promtool; wrk: the soak; clang: the
# fuzz step; podman, runc, debootstrap: the container test; chromium: the playground's browser test.
test_packages=(git ca-certificates python3 python3-torch shellcheck prometheus wrk clang libclang-rt-14-dev
  podman runc debootstrap curl jq chromium)
# Tools the machine images of CI bring in newer builds; from Debian only when absent.
declare -A command_packages=([node]=nodejs [npm]=npm [kubectl]=kubernetes-client [docker]=docker.io)

case $what in
  build) wanted=("${build_packages[@]}") ;;
  test)
    wanted=("${build_packages[@]}" "${test_packages[@]}")
    for cmd in "${!command_packages[@]}"; do
      command -v "$cmd" >/dev/null || wanted+=("${command_packages[$cmd]}")
    done
    ;;
  *) echo "usage: tools/install-deps.sh build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

command -v apt-get >/dev/null || {
  echo "install-deps: missing ${missing[*]}, and this is not a Debian system with apt-get" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run as root, or install sudo, or: apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: installed ${#missing[@]} package(s)"
