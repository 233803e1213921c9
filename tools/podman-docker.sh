#!/usr/bin/env bash
# A Docker-compatible engine on a machine without a Docker daemon: Debian's podman serving the
# Docker API on a unix socket, for the `docker` CLI (DOCKER_HOST) and for the container test.
#
#   tools/podman-docker.sh start STATE_DIR   writes STATE_DIR/containers.conf, starts the API
#                                            service on STATE_DIR/podman.sock (pid in
#                                            STATE_DIR/podman.pid) and makes sure the base image
#                                            docker.io/library/debian:bookworm-slim exists
#   tools/podman-docker.sh stop STATE_DIR    stops that service
#   tools/podman-docker.sh env STATE_DIR     prints the exports the docker/podman CLIs need
#
# No registry is reachable from CI, so the base image is made here: `debootstrap --variant=minbase
# bookworm` imported under the name the Dockerfile's FROM line uses (about a minute, once per
# machine; podman keeps it in its root storage afterwards).
# Needs: podman runc debootstrap (apt-get install -y podman runc debootstrap), root.
set -euo pipefail

base_image=docker.io/library/debian:bookworm-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

usage() { echo "usage: $0 start|stop|env STATE_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
state=$(cd "$2" && pwd)
conf=$state/containers.conf
sock=$state/podman.sock
pidfile=$state/podman.pid

need() {
  command -v "$1" >/dev/null || { echo "FAIL: $1 is not installed (apt-get install -y $2)" >&2; exit 1; }
}

print_env() {
  echo "export CONTAINERS_CONF=$conf"
  echo "export DOCKER_HOST=unix://$sock"
}

start() {
  need podman podman
  need runc runc
  need debootstrap debootstrap
  [ "$(id -u)" = 0 ] || { echo "FAIL: $0 needs root (rootful podman, debootstrap)" >&2; exit 1; }
  # This VM runs hybrid cgroups (v1 controllers) without systemd managing them, and forbids
  # raising rlimits above the current hard limit: cgroupfs, runc, fixed ulimits, host network.
  cat >"$conf" <<'EOF'
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"

[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
netns = "host"
EOF
  export CONTAINERS_CONF=$conf
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "podman API service already running (pid $(cat "$pidfile"))"
  else
    rm -f "$sock"
    podman system service --time=0 "unix://$sock" >"$state/podman-service.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
      [ -S "$sock" ] && break
      sleep 0.1
    done
    [ -S "$sock" ] || { echo "FAIL: podman system service did not create $sock:" >&2; cat "$state/podman-service.log" >&2; exit 1; }
    echo "podman API service on unix://$sock (pid $(cat "$pidfile"))"
  fi

  if podman image exists "$base_image"; then
    echo "base image $base_image present"
  else
    local root=$state/bookworm-rootfs t0=$SECONDS
    rm -rf "$root"
    echo "debootstrap --variant=minbase bookworm (from $mirror) for $base_image ..."
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$state/debootstrap.log" 2>&1 ||
      { echo "FAIL: debootstrap failed:" >&2; tail -20 "$state/debootstrap.log" >&2; exit 1; }
    # What the official slim image also drops: package lists and caches.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" -c . | podman import - "$base_image" >/dev/null
    rm -rf "$root"
    echo "imported $base_image ($((SECONDS - t0)) s)"
  fi
}

stop() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile" "$sock"
  fi
}

case $cmd in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) usage ;;
esac
