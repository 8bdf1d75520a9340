"""Registry routes of the Engine API: pull (`POST /images/create?fromImage=`), push, `/auth`, search.

Pull and push stream dockerd's JSON progress messages (CRLF-terminated, chunked). The response is
only started by the first message, so failures before it (unknown manifest, missing credentials)
are plain error answers as with dockerd; later ones arrive in-stream as `errorDetail`. Credentials
come from the `X-Registry-Auth` header (base64url JSON) or, for `/auth`, the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web

from hatoba.api.common import Router, backend, json_response, param, qfilters, qint, read_json
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig, decode_registry_auth
from hatoba.errors import HatobaError
from hatoba.images.reference import Reference

log = logging.getLogger("hatoba.api")


class RegistryBackend(Protocol):
    def pull_ref(self, image: str, tag: str) -> tuple[Reference, bool]: ...
    async def pull(self, ref: Reference, all_tags: bool, auth: AuthConfig, out: pg.Output,
                   platform: str | None) -> None: ...
    def push_ref(self, name: str, tag: str) -> tuple[Reference, str]: ...
    async def push(self, ref: Reference, tag: str, auth: AuthConfig, out: pg.Output) -> None: ...
    async def login(self, auth: AuthConfig) -> dict[str, str]: ...
    async def search(self, term: str, limit: int | None, filters: dict[str, list[str]],
                     auth: AuthConfig) -> list[dict[str, Any]]: ...


def _b(request: web.Request) -> RegistryBackend:
    return backend(request, "registry")


def _auth(request: web.Request) -> AuthConfig:
    return decode_registry_auth(request.headers.get("X-Registry-Auth"))


async def stream(request: web.Request, op: Callable[[pg.Output], Awaitable[Any]]) -> web.StreamResponse:
    """Run `op` and stream what it sends; errors before the first message are plain error answers."""
    out = pg.Output()
    task = asyncio.ensure_future(op(out))
    resp: web.StreamResponse | None = None
    alive = True

    async def write(m: dict) -> None:
        nonlocal resp, alive
        if not alive:
            return
        try:
            if resp is None:
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
            await resp.write(pg.encode(m))
        except (ConnectionResetError, BrokenPipeError, RuntimeError):
            alive = False  # the client went away; the operation still completes

    try:
        while True:
            getter = asyncio.ensure_future(out.queue.get())
            done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await write(getter.result())
                continue
            getter.cancel()
            while not out.queue.empty():
                await write(out.queue.get_nowait())
            break
    except asyncio.CancelledError:
        task.cancel()
        raise
    exc = task.exception()
    if exc is not None:
        if resp is None:
            raise exc
        if isinstance(exc, HatobaError):
            text = exc.message
        else:
            log.error("registry operation failed", exc_info=exc)
            text = str(exc) or type(exc).__name__
        await write(pg.error(text))
    if resp is None:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError, RuntimeError):
        await resp.write_eof()
    return resp


async def pull(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromImage=NAME[&tag=TAG|DIGEST][&platform=os/arch] (no tag: all tags)."""
    b = _b(request)
    ref, all_tags = b.pull_ref(request.query.get("fromImage", ""), request.query.get("tag", ""))
    auth = _auth(request)
    platform = request.query.get("platform") or None
    return await stream(request, lambda out: b.pull(ref, all_tags, auth, out, platform))


async def push(request: web.Request) -> web.StreamResponse:
    """POST /images/{name}/push[?tag=TAG] (no tag: every tag of the repository)."""
    b = _b(request)
    ref, tag = b.push_ref(unquote(param(request, "name")), request.query.get("tag", ""))
    auth = _auth(request)
    return await stream(request, lambda out: b.push(ref, tag, auth, out))


async def auth(request: web.Request) -> web.StreamResponse:
    """POST /auth {username, password, serveraddress} → {"IdentityToken","Status"}."""
    cfg = AuthConfig.from_dict(await read_json(request))
    return json_response(await _b(request).login(cfg))


async def search(request: web.Request) -> web.StreamResponse:
    """GET /images/search?term=&limit=&filters= → Docker's search results."""
    return json_response(await _b(request).search(request.query.get("term", ""), qint(request, "limit"),
                                                  qfilters(request), _auth(request)))


def register(r: Router) -> None:
    r.add("POST", "/auth", auth)
    r.add("GET", "/images/search", search)
    r.add("POST", "/images/{name:.+}/push", push)
