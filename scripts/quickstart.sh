#!/usr/bin/env bash
# Set everything up, start hatobad in the background if it is not running, bootstrap the base
# images, and run the first container: `hatoba run --rm hello-world`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

ln -sf "$PWD/.venv/bin/hatoba" /usr/local/bin/hatoba
ln -sf "$PWD/.venv/bin/hatobad" /usr/local/bin/hatobad

if ! hatoba version >/dev/null 2>&1; then
  echo "quickstart: starting hatobad (log: /var/log/hatobad.log)"
  setsid hatobad >>/var/log/hatobad.log 2>&1 < /dev/null &
  for _ in $(seq 100); do hatoba version >/dev/null 2>&1 && break; sleep 0.1; done
  hatoba version >/dev/null || { tail -20 /var/log/hatobad.log; exit 1; }
fi
for img in busybox hello-world; do
  hatoba image inspect "$img" >/dev/null 2>&1 || hatoba image bootstrap "$img"
done
hatoba run --rm hello-world
