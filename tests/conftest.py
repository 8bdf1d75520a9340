"""Shared pytest settings: integration tests are marked and need root, runc and conmon; the skip guard
(tests/skipguard.py: ``--require-host``, ``--strict-skips``, both passed by scripts/test.sh)."""

pytest_plugins = ["skipguard"]
