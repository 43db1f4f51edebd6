#!/usr/bin/env bash
# Development NATS servers for Sluice, in the background.
#
#   deploy/nats/nats-dev.sh start  [single|cluster]   default: single
#   deploy/nats/nats-dev.sh stop   [single|cluster]   default: both
#   deploy/nats/nats-dev.sh status [single|cluster]   default: both
#
# State lives under ${SLUICE_NATS_DIR:-$HOME/.sluice/nats}:
#   conf/<node>.conf   the config actually used (a copy of deploy/nats/...; see sync_interval below)
#   data/<node>/       JetStream store (the configs' relative store_dir; servers run with that dir as cwd)
#   logs/<node>.log    server output, appended
#   run/<node>.pid     pid
# Nodes: single (client port 4222), or n1 n2 n3 (4222, 4223, 4224). Both modes use 4222: run one at a time.
#
# Environment: SLUICE_NATS_DIR, NATS_SERVER_BIN (default: nats-server on PATH, else /usr/sbin/nats-server),
# SLUICE_NATS_START_TIMEOUT / SLUICE_NATS_STOP_TIMEOUT in seconds (default 20 / 15).
#
# start on a running node says so and leaves it alone (exit 0); stop on a stopped one likewise.
# status exits 0 when every node asked about runs, 3 otherwise (with no mode: when either mode fully runs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${SLUICE_NATS_DIR:-$HOME/.sluice/nats}"
START_TIMEOUT="${SLUICE_NATS_START_TIMEOUT:-20}"
STOP_TIMEOUT="${SLUICE_NATS_STOP_TIMEOUT:-15}"

usage() {
  echo "usage: $0 start|stop|status [single|cluster]" >&2
  exit 2
}

find_bin() {
  if [[ -n "${NATS_SERVER_BIN:-}" ]]; then
    echo "$NATS_SERVER_BIN"
  elif command -v nats-server >/dev/null 2>&1; then
    command -v nats-server
  elif [[ -x /usr/sbin/nats-server ]]; then
    echo /usr/sbin/nats-server
  else
    echo "nats-server not found: install it (apt-get install -y nats-server) or set NATS_SERVER_BIN" >&2
    exit 1
  fi
}

nodes_of() {
  case "$1" in
    single) echo single ;;
    cluster) echo n1 n2 n3 ;;
    *) usage ;;
  esac
}

conf_of() {
  case "$1" in
    single) echo "$HERE/single.conf" ;;
    *) echo "$HERE/cluster/$1.conf" ;;
  esac
}

port_of() {
  case "$1" in
    single | n1) echo 4222 ;;
    n2) echo 4223 ;;
    n3) echo 4224 ;;
  esac
}

monitor_of() { echo $(($(port_of "$1") + 4000)); }

# The pid of a running node, or nothing. A stale pid file (or a pid reused by another program) counts as
# not running.
pid_of() {
  local file="$STATE/run/$1.pid" pid
  [[ -f "$file" ]] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  [[ "$(ps -p "$pid" -o comm= 2>/dev/null || true)" == *nats-server* ]] || return 0
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 1 when the server is older than 2.10 (no jetstream.sync_interval).
old_server() {
  local version major minor
  version="$("$1" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')"
  read -r major minor <<<"${version:-0 0}"
  ((major < 2 || (major == 2 && minor < 10)))
}

start_mode() {
  local mode="$1" other bin node pid port started=() failed=0 deadline
  other=$([[ "$mode" == single ]] && echo cluster || echo single)
  for node in $(nodes_of "$other"); do
    if [[ -n "$(pid_of "$node")" ]]; then
      echo "the $other setup is running (node $node); stop it first: $0 stop $other" >&2
      exit 1
    fi
  done
  bin="$(find_bin)"
  mkdir -p "$STATE/conf" "$STATE/data" "$STATE/logs" "$STATE/run"

  for node in $(nodes_of "$mode"); do
    pid="$(pid_of "$node")"
    if [[ -n "$pid" ]]; then
      echo "$node already running (pid $pid, nats://127.0.0.1:$(port_of "$node"))"
      continue
    fi
    port="$(port_of "$node")"
    if port_open "$port"; then
      echo "port $port is taken by another process" \
        "(Debian's nats-server service? systemctl stop nats-server)" >&2
      failed=1
      continue
    fi
    if old_server "$bin" && grep -q '^[[:space:]]*sync_interval:' "$(conf_of "$node")"; then
      echo "warning: $("$bin" --version) is older than 2.10: $node runs WITHOUT 'sync_interval: always'" >&2
      grep -v '^[[:space:]]*sync_interval:' "$(conf_of "$node")" >"$STATE/conf/$node.conf"
    else
      cp "$(conf_of "$node")" "$STATE/conf/$node.conf"
    fi
    # nohup: survive the terminal closing; the server gets its own stdin and runs with cwd $STATE so the
    # configs' relative store_dir lands in $STATE/data.
    (cd "$STATE" && exec nohup "$bin" -c "$STATE/conf/$node.conf" >>"$STATE/logs/$node.log" 2>&1 </dev/null) &
    echo $! >"$STATE/run/$node.pid"
    started+=("$node")
  done

  deadline=$((SECONDS + START_TIMEOUT))
  for node in ${started[@]+"${started[@]}"}; do
    port="$(port_of "$node")"
    until port_open "$port"; do
      if [[ -z "$(pid_of "$node")" ]]; then
        echo "$node exited while starting; last lines of $STATE/logs/$node.log:" >&2
        tail -n 20 "$STATE/logs/$node.log" >&2
        rm -f "$STATE/run/$node.pid"
        failed=1
        continue 2
      fi
      if ((SECONDS >= deadline)); then
        echo "$node did not accept connections on port $port within ${START_TIMEOUT}s;" \
          "see $STATE/logs/$node.log" >&2
        failed=1
        continue 2
      fi
      sleep 0.1
    done
    echo "$node started (pid $(pid_of "$node"), nats://127.0.0.1:$port, log $STATE/logs/$node.log)"
  done
  return "$failed"
}

stop_mode() {
  local mode="$1" node pid pids=() names=() i deadline
  for node in $(nodes_of "$mode"); do
    pid="$(pid_of "$node")"
    if [[ -z "$pid" ]]; then
      rm -f "$STATE/run/$node.pid"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
    names+=("$node")
  done
  deadline=$((SECONDS + STOP_TIMEOUT))
  for i in ${pids[@]+"${!pids[@]}"}; do
    while kill -0 "${pids[$i]}" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        echo "${names[$i]} (pid ${pids[$i]}) still running after ${STOP_TIMEOUT}s: sending SIGKILL" >&2
        kill -KILL "${pids[$i]}" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
    rm -f "$STATE/run/${names[$i]}.pid"
    echo "${names[$i]} stopped"
  done
  ((${#pids[@]} > 0)) || echo "$mode: not running"
}

status_mode() {
  local mode="$1" node pid running=0 total=0
  for node in $(nodes_of "$mode"); do
    total=$((total + 1))
    pid="$(pid_of "$node")"
    if [[ -n "$pid" ]]; then
      running=$((running + 1))
      echo "$mode/$node: running (pid $pid) nats://127.0.0.1:$(port_of "$node")" \
        "monitor http://127.0.0.1:$(monitor_of "$node") log $STATE/logs/$node.log"
    else
      echo "$mode/$node: stopped"
    fi
  done
  ((running == total))
}

cmd="${1:-}"
mode="${2:-}"
[[ $# -le 2 ]] || usage
[[ -z "$mode" || "$mode" == single || "$mode" == cluster ]] || usage

case "$cmd" in
  start) start_mode "${mode:-single}" ;;
  stop)
    if [[ -n "$mode" ]]; then stop_mode "$mode"; else
      stop_mode single
      stop_mode cluster
    fi
    ;;
  status)
    if [[ -n "$mode" ]]; then status_mode "$mode" || exit 3; else
      rc=3
      status_mode single && rc=0
      status_mode cluster && rc=0
      exit "$rc"
    fi
    ;;
  *) usage ;;
esac
