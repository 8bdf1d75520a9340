"""Stdlib HTTP client of the Engine API over a unix socket (or TCP): requests, streams, hijacked connections."""
