#!/usr/bin/env bash
# Idempotent setup on Debian 12, as root: system packages, a venv in .venv, hatoba installed into it.
#
# Packages that only the tests need are installed with their daemons kept off: apt runs under a
# policy-rc.d that refuses to start services, and the units they bring are disabled (systemd units,
# socket activation and sysv links): docker-registry (a test peer that would listen on :5000), and,
# where there is no `docker` CLI, Debian's docker.io for its CLI only (docker.service, docker.socket,
# and containerd.service if containerd came with it; without recommends, so no cgroupfs-mount).
set -euo pipefail
cd "$(dirname "$0")/.."

# tini: the init hatobad runs for --init; iproute2, nftables: the leak checks of the integration tests
pkgs=(runc conmon busybox-static procps python3-venv mmdebstrap skopeo docker-registry apache2-utils openssl
      tini iproute2 nftables)
installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# units to keep off, written down before apt runs so that an interrupted run is finished by the next
pending=/var/lib/hatoba-setup/disable-units
disable_units() {
  local unit
  for unit in "$@"; do
    if command -v systemctl >/dev/null 2>&1 && [ -e "/lib/systemd/system/$unit" ]; then
      if [ -d /run/systemd/system ]; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
      else
        systemctl disable "$unit" >/dev/null 2>&1 || true  # works offline: removes the .wants links
      fi
    fi
    local script=${unit%.service}
    if [ "$script" = "$unit" ]; then continue; fi  # sockets have no init script
    if [ -x "/etc/init.d/$script" ] && command -v update-rc.d >/dev/null 2>&1; then
      update-rc.d "$script" disable >/dev/null 2>&1 || true
    fi
  done
}
if [ -s "$pending" ] && [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2046
  disable_units $(cat "$pending")
  rm -f "$pending"; rmdir --ignore-fail-on-non-empty "$(dirname "$pending")"
fi

need=()
for p in "${pkgs[@]}"; do installed "$p" || need+=("$p"); done
# the docker CLI of the tests: the one on PATH if any, else Debian's (20.10)
want_docker=0
command -v docker >/dev/null 2>&1 || want_docker=1

if [ ${#need[@]} -gt 0 ] || [ $want_docker = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: Debian packages are missing (${need[*]}$([ $want_docker = 1 ] && echo " docker.io")): run as root" >&2; exit 1; }
  units=()
  installed docker-registry || units+=(docker-registry.service)
  if [ $want_docker = 1 ]; then
    units+=(docker.service docker.socket)
    installed containerd || units+=(containerd.service)
  fi
  mkdir -p "$(dirname "$pending")"
  printf '%s\n' "${units[@]}" > "$pending"
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; made_prc=1; fi
  trap '[ "$made_prc" = 1 ] && rm -f "$prc"' EXIT
  apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ $want_docker = 1 ]; then
    echo "setup: no docker CLI on PATH: installing Debian's docker.io for its CLI (its daemon stays off)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  disable_units "${units[@]}"
  rm -f "$pending"; rmdir --ignore-fail-on-non-empty "$(dirname "$pending")"
  [ "$made_prc" = 1 ] && rm -f "$prc"
  trap - EXIT
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "hatoba needs Python >= 3.11"'
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.hatoba-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c 'import hatoba, aiohttp, docker, pytest' 2>/dev/null; then
  echo "setup: installing hatoba and its Python dependencies into .venv"
  # compat mode: a plain path entry in a .pth instead of an import hook (keeps CLI start-up fast)
  .venv/bin/pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
  echo "$want" > "$stamp"
fi
# byte-compile (PYTHONDONTWRITEBYTECODE may be set; reading .pyc still works): CLI start-up stays fast
.venv/bin/python -m compileall -q -j 0 hatoba >/dev/null
# the `hatoba` program: a launcher that starts Python without `site` (pip's console script spends
# ~10 ms on .pth files and `re` before hatoba runs; see hatoba/cli/launcher.py)
.venv/bin/python -m hatoba.cli.launcher .venv/bin/hatoba
