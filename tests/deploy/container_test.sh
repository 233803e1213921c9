#!/usr/bin/env bash
# The container image, built and run for real: podman serves the Docker API
# (tools/podman-docker.sh) and the `docker` CLI drives it.
#   - docker build docker/Dockerfile (reports the build time)
#   - the image's user is not root, it has a HEALTHCHECK, its size above the base is reported
#     and kept under a budget
#   - run with the default model mounted at /models: /ready, POST /predict gives the label
#     bertserve-cli predict gives for the same text, /info says no sanitizers
#   - `podman healthcheck run` (the image's HEALTHCHECK) is healthy
#   - `docker stop` with a request in flight: the request is answered, the exit status is 0
#     within the grace period
#   - run with --cpus 1: /info shows 1 CPU chosen from the cgroup quota
#   - tools/serve.sh (the README's first command) on the bare debootstrap base image: apt-get
#     installs the build dependencies, the build runs, /predict answers; each step's time reported
# Everything it starts (containers, the podman API service) it stops, also on failure.
# usage: tests/deploy/container_test.sh [BUILD_DIR]   (BUILD_DIR holds bertserve-cli; default build)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=$(cd "${1:-build}" && pwd)
shared=${BERTSERVE_SHARED:-$root/../shared}
image=bertserve:ci-test
base=docker.io/library/debian:bookworm-slim
size_budget_mb=${SIZE_BUDGET_MB:-40}   # the runtime layers above the base image
grace=30                               # docker stop -t; the image drains within 20 s

fail() { echo "FAIL: $*" >&2; exit 1; }
for tool in docker podman curl jq; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (see .ci/run)"
done
[ -x "$build/bertserve-cli" ] || fail "$build/bertserve-cli is missing (build first)"
# The shared model is a real directory; models/finsent-mini is only a link to it, and a link
# would not resolve inside the container, so the resolved directory is what is mounted.
model=$(readlink -f "$shared/models/finsent-mini") || fail "no finsent-mini under $shared/models (set BERTSERVE_SHARED)"
for f in config.json vocab.txt model.safetensors; do
  [ -f "$model/$f" ] || fail "$model/$f is missing (set BERTSERVE_SHARED)"
done

state=$root/build/container
containers=()
cleanup() {
  local rc=$?
  for c in "${containers[@]}"; do
    if [ "$rc" != 0 ]; then
      echo "--- log of $c" >&2
      docker logs "$c" 2>&1 | tail -20 >&2 || true
    fi
    docker rm -f "$c" >/dev/null 2>&1 || true
  done
  # The build stage's images (~850 MB, untagged once the build is done) and images this tag
  # replaced would pile up run after run.
  podman image prune -f >/dev/null 2>&1 || true
  tools/podman-docker.sh stop "$state" || true
  exit "$rc"
}
trap cleanup EXIT
tools/podman-docker.sh start "$state"
eval "$(tools/podman-docker.sh env "$state")"

echo "-- docker build"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
t0=$(now)
docker build -q -f docker/Dockerfile -t "$image" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" . >"$state/build.log" 2>&1 ||
  { tail -30 "$state/build.log" >&2; fail "docker build failed"; }
build_s=$(since "$t0")
echo "image built in ${build_s} s"

user=$(docker image inspect -f '{{.Config.User}}' "$image")
case ${user%%:*} in
  "" | 0 | root) fail "the image runs as root (User=\"$user\")" ;;
esac
echo "image user: $user"
# podman 4.3's Docker API leaves Config.Healthcheck out of `docker image inspect`; podman's own
# inspect shows what the image holds (the HEALTHCHECK survives only in Docker format).
hc=$(podman image inspect "$image" | jq -c '.[0].Healthcheck')
jq -e '.Test | index("--healthcheck")' <<<"$hc" >/dev/null || fail "no HEALTHCHECK with --healthcheck: $hc"
size=$(docker image inspect -f '{{.Size}}' "$image")
base_size=$(docker image inspect -f '{{.Size}}' "$base")
above_mb=$(awk -v a="$size" -v b="$base_size" 'BEGIN {printf "%.1f", (a - b) / 1048576}')
echo "image size $((size / 1048576)) MB, base $((base_size / 1048576)) MB, above base ${above_mb} MB (budget ${size_budget_mb} MB)"
awk -v a="$above_mb" -v b="$size_budget_mb" 'BEGIN {exit !(a <= b)}' || fail "the image adds ${above_mb} MB to its base, over ${size_budget_mb} MB"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a container with the model mounted read-only at /models; sets $name and $port. The
# network is the host's: the Docker API's default is a bridge this VM cannot set up, and
# containers.conf's netns does not apply to containers created through that API.
run_container() {
  port=$(free_port)
  name=bertserve-ci-$$-$port
  containers+=("$name")
  # As hardened as the Kubernetes pod (k8s/deployment.yaml): read-only root, no capabilities.
  docker run -d --name "$name" --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges -v "$model:/models:ro" -e BERTSERVE_PORT="$port" "$@" "$image" >/dev/null
  local url=http://127.0.0.1:$port
  for _ in $(seq 120); do
    curl -fsS "$url/ready" >/dev/null 2>&1 && return 0
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "container $name exited before /ready"
    sleep 0.5
  done
  fail "container $name not ready within 60 s"
}

echo "-- run with the model mounted at /models"
run_container
url=http://127.0.0.1:$port
text="Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007"
got=$(curl -fsS "$url/predict" -H 'Content-Type: application/json' -d "$(jq -n --arg t "$text" '{text: $t}')")
want=$(printf '%s\n' "$text" | "$build/bertserve-cli" predict --model "$model")
got_label=$(jq -r .prediction <<<"$got")
want_label=$(jq -r .label <<<"$want")
echo "predict: container \"$got_label\" ($(jq .confidence <<<"$got")), bertserve-cli \"$want_label\" ($(jq .score <<<"$want"))"
if [ -z "$got_label" ] || [ "$got_label" != "$want_label" ]; then fail "labels differ: container $got, cli $want"; fi
info=$(curl -fsS "$url/info")
jq -e '.model == "/models" and (.build | contains("sanitizers off"))' <<<"$info" >/dev/null ||
  fail "/info: $info"
echo "info: cpus $(jq .cpus <<<"$info") ($(jq -r .cpu_source <<<"$info")), kernel $(jq -r .gemm_kernel <<<"$info")"

echo "-- HEALTHCHECK"
podman healthcheck run "$name" || fail "podman healthcheck run: unhealthy"
echo "podman healthcheck run: healthy"

echo "-- docker stop with a request in flight"
# 64 texts of 512 tokens: seconds of compute, still running when SIGTERM arrives.
python3 -c 'import json; print(json.dumps({"texts": [" ".join(["profit"] * 600)] * 64}))' >"$state/long.json"
curl -sS -o /dev/null -w '%{http_code}' "$url/predict" -H 'Content-Type: application/json' \
  --data-binary @"$state/long.json" >"$state/long.code" &
inflight=$!
sleep 0.5
t0=$(now)
docker stop -t "$grace" "$name" >/dev/null
stop_s=$(since "$t0")
wait "$inflight" || true
[ "$(cat "$state/long.code")" = 200 ] || fail "the request in flight at docker stop got $(cat "$state/long.code"), not 200"
echo "in-flight request answered 200 during the drain"
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
echo "docker stop: exit code $code after ${stop_s} s (grace ${grace} s)"
[ "$code" = 0 ] || fail "exit code $code after docker stop"
awk -v a="$stop_s" -v b="$grace" 'BEGIN {exit !(a < b)}' || fail "docker stop took ${stop_s} s: the daemon was killed, not drained"
# (The log is read whole first: grep -q closing the pipe early would fail the pipeline.)
log=$(docker logs "$name" 2>&1)
grep -q '"event":"stopped","drained":true' <<<"$log" || fail "no stopped event with drained:true in the log"

echo "-- run with --cpus 1"
run_container --cpus 1
info=$(curl -fsS "http://127.0.0.1:$port/info")
echo "info with --cpus 1: cpus $(jq .cpus <<<"$info"), threads_per_worker $(jq .threads_per_worker <<<"$info"), cpu_source \"$(jq -r .cpu_source <<<"$info")\""
jq -e '.cpus == 1 and .threads_per_worker == 1 and (.cpu_source | startswith("cgroup"))' <<<"$info" >/dev/null ||
  fail "--cpus 1 is not what sized the threads: $info"
log=$(docker logs "$name" 2>&1)
grep -q '"cpu_source":"cgroup' <<<"$log" || fail "the startup log does not say how the CPUs were chosen"
docker stop -t "$grace" "$name" >/dev/null

echo "-- tools/serve.sh on a bare Debian 12 (the debootstrap minbase image, nothing installed)"
# The README's first command, as a new user runs it on a fresh machine: the repository and the
# shared assets mounted, the build dependencies installed by apt-get inside, the daemon built and
# started on the default model; /predict must answer. The image is the base this test made
# (tools/podman-docker.sh), so apt reaches the Debian mirror only, as on CI.
port=$(free_port)
name=bertserve-bare-$$-$port
containers+=("$name")
shared_real=$(readlink -f "$shared")
t0=$(now)
docker run -d --name "$name" --network host -v "$root:/src:ro" -v "$shared_real:/shared:ro" \
  -e BERTSERVE_SHARED=/shared "$base" bash -c "mkdir /bertserve && tar -C /src --exclude='./build*' -cf - . |
    tar -C /bertserve -xf - && cd /bertserve && exec tools/serve.sh --host 127.0.0.1 --port $port" >/dev/null
for _ in $(seq 1800); do
  curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  [ "$(docker inspect -f '{{.State.Running}}' "$name")" = true ] || fail "tools/serve.sh exited in the bare container"
  sleep 0.5
done
bare_s=$(since "$t0")
got=$(curl -fsS "http://127.0.0.1:$port/predict" -H 'Content-Type: application/json' \
  -d "$(jq -n --arg t "$text" '{text: $t}')") || fail "tools/serve.sh: no /predict within 15 minutes"
[ "$(jq -r .prediction <<<"$got")" = "$want_label" ] || fail "bare machine: $got, want $want_label"
log=$(docker logs "$name" 2>&1)
echo "bare Debian 12: /predict answered \"$want_label\" ${bare_s} s after start; tools/serve.sh's steps:"
grep '^serve: .* took' <<<"$log" | sed 's/^/  /'
grep -q "install-deps: installing" <<<"$log" || fail "tools/serve.sh installed nothing on a bare machine?"
docker stop -t "$grace" "$name" >/dev/null

echo "container: all checks passed"
