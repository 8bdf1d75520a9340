#!/usr/bin/env bash
# Idempotent setup on Debian 12, as root: system packages, a venv in .venv, hatoba installed into it.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(runc conmon busybox-static procps python3-venv mmdebstrap skopeo docker-registry apache2-utils openssl)
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  # docker-registry is only a test peer: keep apt from starting its service (it would listen on :5000)
  prc=/usr/sbin/policy-rc.d
  made_prc=0
  if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod +x "$prc"; made_prc=1; fi
  trap '[ "$made_prc" = 1 ] && rm -f "$prc"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  if [ -d /run/systemd/system ]; then systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
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
