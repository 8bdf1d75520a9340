"""Shared pytest settings: integration tests are marked and need root, runc and conmon."""
