#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: lint, unit tests, integration tests.
# The README's test command and CI's (.ci/run). It runs as root: the integration tests start hatobad
# and run real containers. pytest gets --require-host (stop at once, with the reason, without root,
# runc, conmon, the docker CLI, ip or nft) and --strict-skips (a skip that tests/skipguard.py's
# allow-list does not permit on this machine fails the run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: the test suite must run as root (the integration tests start hatobad and run" \
       "containers with runc; without root they would all be skipped): sudo bash scripts/test.sh" >&2
  exit 1
fi
bash scripts/setup.sh
.venv/bin/ruff check hatoba tests bench
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider -rs --require-host --strict-skips tests "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc
