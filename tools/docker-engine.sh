#!/usr/bin/env bash
# A Docker engine for the Docker end-to-end test (tests/e2e_docker.rs), on a machine without one:
#
#   tools/docker-engine.sh start   installs Debian's docker.io when dockerd is missing, starts
#                                  dockerd in the background when no daemon answers, waits for it
#   tools/docker-engine.sh stop    stops the dockerd that `start` started (nothing otherwise)
#
# The demo's containers use the host's network, so dockerd runs without a bridge and without
# iptables rules: it creates no network of its own. Its log is in $DOCKERD_DIR (see below).
set -euo pipefail
dir=${DOCKERD_DIR:-/tmp/jwt-authn-wasm-dockerd}
pidfile=$dir/dockerd.pid
sudo=$([ "$(id -u)" = 0 ] || echo sudo)

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  if answers; then
    echo "docker: a daemon already answers ($(docker version --format '{{.Server.Version}}'))"
    return
  fi
  if ! command -v dockerd >/dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker.io >/dev/null
  fi
  mkdir -p "$dir"
  $sudo dockerd --bridge=none --iptables=false --ip6tables=false >"$dir/dockerd.log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    if answers; then
      echo "docker: dockerd started (pid $(cat "$pidfile"), log $dir/dockerd.log)"
      return
    fi
    sleep 1
  done
  echo "docker: dockerd did not answer within 60 s; the end of its log:" >&2
  tail -n 20 "$dir/dockerd.log" >&2
  exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  rm -f "$pidfile"
  $sudo kill "$pid" 2>/dev/null || return 0
  # dockerd stops its containerd and the containers' shims before it exits.
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || { echo "docker: dockerd stopped"; return 0; }
    sleep 1
  done
  echo "docker: dockerd (pid $pid) still running after 30 s" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
