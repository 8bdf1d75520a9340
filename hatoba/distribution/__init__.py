"""The registry client (Docker Registry HTTP API v2 / OCI distribution): pull, push, login, search.

Modules, bottom up:

- `auth`: `X-Registry-Auth` credentials, `WWW-Authenticate` challenge parsing, the token cache.
- `manifest`: media types, the `Accept` list, manifest parsing and platform selection.
- `progress`: Docker's progress JSON messages and bar strings.
- `client`: one registry over aiohttp: endpoint choice (https, http for insecure registries,
  mirrors), the auth challenge flow, blobs (resumable GET, HEAD, mount, monolithic and chunked
  upload), manifests, tags, catalog and `/v1/search`.
- `pull`, `push`, `search`: the operations behind the Engine API routes in `hatoba.api.distribution`.
- `service`: the daemon-wide state they share (configuration, caches, in-flight downloads).
"""
