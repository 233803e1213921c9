#!/usr/bin/env bash
# The first command: from a bare Debian 12 machine to bertserve serving the default model
# (finsent-mini) on port 8080, with the playground page at http://localhost:8080/.
#   tools/serve.sh [bertserve options...]     e.g. tools/serve.sh --port 9000 --dtype auto
# Installs the build dependencies it lacks (tools/install-deps.sh build: as root or through
# sudo), builds a Release binary in build/, links the default model from the shared assets
# ($BERTSERVE_SHARED, default ../shared beside the project) and runs the daemon in the
# foreground (Ctrl+C stops it). Prints how long each step took.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step_start=$(date +%s)
step() { # name: the time the step before took, then the next step's name
  local now
  now=$(date +%s)
  [ -z "${step_name:-}" ] || echo "serve: $step_name took $((now - step_start)) s" >&2
  step_name=$1
  step_start=$now
  [ -z "$1" ] || echo "serve: $1" >&2
}
step "installing the build dependencies (if any are missing)"
tools/install-deps.sh build
step "building (build/, Release)"
cmake -B build -S . -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
step "linking the default model"
models/link-default.sh >&2
step ""
exec build/bertserve --model models/finsent-mini "$@"
