#!/usr/bin/env bash
# Installs nats-server from Debian's packages when it is not installed yet (Sluice needs the binary for
# local mode and for its tests). Safe to run again. Used by the README's quick start and by .ci/run.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
if command -v nats-server >/dev/null 2>&1; then
  exit 0
fi
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo -n "$@"; fi
}
retry() {
  local i
  for i in 1 2 3; do
    "$@" && return 0
    echo "attempt $i of 3 failed: $*" >&2
    sleep $((i * 5))
  done
  return 1
}
echo '--- installing nats-server (apt-get)' >&2
export DEBIAN_FRONTEND=noninteractive
retry as_root apt-get update
retry as_root apt-get install -y --no-install-recommends nats-server </dev/null
