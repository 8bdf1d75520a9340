#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite: lint, unit tests, integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check hatoba tests bench
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no tests ran"; exit 1; fi
exit $rc
