"""The Engine API (aiohttp): routes, version prefixes, hijacked streams, error to status mapping. Thin: calls hatoba.engine."""
