"""Daemon-wide registry state: configuration, token/endpoint/challenge caches, in-flight downloads.

One `Service` per daemon (the API creates it on first use). Each pull/push/login/search opens its
own aiohttp session; what must outlive one operation (tokens, which scheme a registry speaks,
downloads another pull is waiting for) lives here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from hatoba.distribution.auth import AuthConfig, Challenge, TokenCache
from hatoba.distribution.client import DOCKER_HUB, Endpoint, Registry, mirror_endpoints, resolve_endpoint
from hatoba.images.reference import Reference


class Service:
    def __init__(self, images: Any, config: Any = None):
        self.images = images
        self.insecure_registries: list[str] = list(getattr(config, "insecure_registries", None) or [])
        self.registry_mirrors: list[str] = list(getattr(config, "registry_mirrors", None) or [])
        self.max_concurrent_downloads = int(getattr(config, "max_concurrent_downloads", 0) or 3)
        self.max_concurrent_uploads = int(getattr(config, "max_concurrent_uploads", 0) or 5)
        self.upload_mode = "stream"  # or "chunked" (PATCHes of upload_chunk_size) / "monolithic"
        self.upload_chunk_size = 8 << 20
        self.monolithic_limit = 1 << 20  # blobs up to this size go in one PUT
        self.tokens = TokenCache()
        self.endpoints: dict[str, tuple[Endpoint, float]] = {}
        self.challenges: dict[str, list[Challenge]] = {}
        self.downloads: dict[str, asyncio.Future[None]] = {}

    def session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30, sock_read=120)
        return aiohttp.ClientSession(timeout=timeout, auto_decompress=False,
                                     connector=aiohttp.TCPConnector(limit=16, force_close=False))

    async def endpoints_for(self, session: aiohttp.ClientSession, domain: str, *, pull: bool) -> list[Endpoint]:
        """Mirrors first (docker.io pulls only), then the registry itself."""
        eps = mirror_endpoints(self, domain) if pull and domain == DOCKER_HUB else []
        return eps + [await resolve_endpoint(self, session, domain)]

    async def registry(self, session: aiohttp.ClientSession, ref: Reference, auth: AuthConfig | None,
                       actions: str = "pull", endpoint: Endpoint | None = None) -> Registry:
        ep = endpoint or await resolve_endpoint(self, session, ref.domain)
        return Registry(self, session, ref.domain, auth, ep, ref.path, actions)
