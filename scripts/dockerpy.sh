#!/usr/bin/env bash
# Run docker-py's own integration suite (../shared/peers/dockerpy, its harness run.sh) against a
# private hatobad: its own socket, data root, exec root, pidfile and cgroup parent under a temp dir.
# The daemon is stopped by its pid and everything is removed at the end.
#
#   bash scripts/dockerpy.sh                       # the modules the hardening issue names
#   bash scripts/dockerpy.sh all                   # docker-py's single-host subset, every module
#   bash scripts/dockerpy.sh tests/integration/api_exec_test.py -k detach   # anything run.sh takes
#
# Environment: DOCKERPY_PEER (harness dir, default ../shared/peers/dockerpy next to this checkout),
# DOCKERPY_WORK (harness venv and results, default /tmp/dockerpy-harness), DOCKERPY_OUT (junit etc.).
# Prints the harness's per-module table and its last line `dockerpy: N passed, N failed, ...`.
# Exit status: run.sh's (0 = the run completed; with DOCKERPY_STRICT=1, 1 = some test failed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$(pwd)
PEER=${DOCKERPY_PEER:-$ROOT_DIR/../shared/peers/dockerpy}
[ -x "$PEER/run.sh" ] || { echo "dockerpy.sh: no docker-py harness at $PEER" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "dockerpy.sh: must run as root (hatobad runs containers)" >&2; exit 2; }
bash scripts/setup.sh >/dev/null

MODULES=(api_container_test api_exec_test api_image_test api_healthcheck_test models_containers_test
         models_images_test regression_test api_client_test client_test)
args=()
if [ $# -eq 0 ]; then
  for m in "${MODULES[@]}"; do args+=("tests/integration/$m.py"); done
elif [ "$1" = all ]; then
  shift; args=("$@")
else
  args=("$@")
fi

T=$(mktemp -d /tmp/hatoba-dockerpy-XXXXXX)
CG=/hatoba-dockerpy-$(basename "$T" | tr -dc 'a-zA-Z0-9' | tail -c 8)
SOCK=$T/hatoba.sock
echo '{}' > "$T/daemon.json"
.venv/bin/hatobad -H "unix://$SOCK" --data-root "$T/data" --exec-root "$T/run" --pidfile "$T/hatobad.pid" \
  --cgroup-parent "$CG" --config-file "$T/daemon.json" >"$T/hatobad.log" 2>&1 &
DPID=$!
cleanup() {
  set +e
  for id in $(DOCKER_HOST="unix://$SOCK" .venv/bin/hatoba ps -aq 2>/dev/null); do
    DOCKER_HOST="unix://$SOCK" .venv/bin/hatoba rm -f "$id" >/dev/null 2>&1
  done
  kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null
  grep -q "Traceback (most recent call last)" "$T/hatobad.log" && {
    echo "dockerpy.sh: hatobad logged tracebacks:" >&2; grep -A 30 "Traceback" "$T/hatobad.log" | head -120 >&2; }
  awk -v r="$T" '$5 ~ "^"r {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
  for d in /sys/fs/cgroup/*/"${CG#/}" /sys/fs/cgroup/unified/"${CG#/}"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  cp "$T/hatobad.log" "${DOCKERPY_WORK:-/tmp/dockerpy-harness}/hatobad.log" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { echo "dockerpy.sh: hatobad did not start:" >&2; cat "$T/hatobad.log" >&2; exit 2; }
mkdir -p "${DOCKERPY_WORK:-/tmp/dockerpy-harness}"
# docker-py's tests leave temporary files behind (NamedTemporaryFile(delete=False), make_tree): keep
# them in our temp dir, which goes at the end
mkdir -p "$T/tmp"
TMPDIR="$T/tmp" DOCKERPY_SUBSET=single-host DOCKERPY_ALLOW_PRUNE=1 DOCKERPY_WORK=${DOCKERPY_WORK:-/tmp/dockerpy-harness} \
  DOCKER_HOST="unix://$SOCK" bash "$PEER/run.sh" "${args[@]}"
