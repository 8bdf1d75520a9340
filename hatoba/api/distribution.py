"""Registry routes of the Engine API: pull (`POST /images/create?fromImage=`), push, `/auth`, search.

Pull and push stream dockerd's JSON progress messages (CRLF-terminated, chunked). The response is
only started by the first message, so failures before it (unknown manifest, missing credentials)
are plain error answers as with dockerd; later ones arrive in-stream as `errorDetail`. Credentials
come from the `X-Registry-Auth` header (base64url JSON) or, for `/auth`, the body.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from hatoba.api.server import Router, json_response, qfilters, qint, read_json
from hatoba.distribution import progress as pg
from hatoba.distribution.auth import AuthConfig, decode_registry_auth
from hatoba.errors import HatobaError, InvalidParameter
from hatoba.images import reference


def service(eng: Any) -> Any:
    """The daemon's registry Service, created on first use and kept on the engine."""
    svc = getattr(eng, "distribution", None)
    if svc is None:
        from hatoba.distribution.service import Service

        svc = Service(eng.images, eng.config)
        eng.distribution = svc
    return svc


def _auth(request: web.Request) -> AuthConfig:
    return decode_registry_auth(request.headers.get("X-Registry-Auth"))


async def stream(request: web.Request, op: Callable[[pg.Output], Awaitable[Any]]) -> web.StreamResponse:
    """Run `op` and stream what it sends; errors before the first message are plain error answers."""
    out = pg.Output()
    task = asyncio.ensure_future(op(out))
    resp: web.StreamResponse | None = None
    alive = True

    async def write(msg: dict) -> None:
        nonlocal resp, alive
        if not alive:
            return
        try:
            if resp is None:
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                resp.enable_chunked_encoding()
                await resp.prepare(request)
            await resp.write(pg.encode(msg))
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
        msg = exc.message if isinstance(exc, HatobaError) else (str(exc) or type(exc).__name__)
        await write(pg.error(msg))
    if resp is None:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
    with contextlib.suppress(ConnectionResetError, BrokenPipeError, RuntimeError):
        await resp.write_eof()
    return resp


def _bootstrap_hint(ref: reference.Reference) -> str:
    """"; hatoba can build x from Debian packages: run …" for names a bootstrap recipe builds, else ""."""
    from hatoba.images import bootstrap

    h = bootstrap.hint(ref.familiar()) if ref.tag or ref.digest else bootstrap.hint(ref.repository)
    return f"; {h}" if h else ""


async def pull(request: web.Request) -> web.StreamResponse:
    """POST /images/create?fromImage=NAME[&tag=TAG|DIGEST][&platform=os/arch] (no tag: all tags)."""
    from hatoba.distribution import pull as puller

    eng = request.app["engine"]
    image = request.query.get("fromImage", "")
    tag = request.query.get("tag", "")
    if not image:
        raise InvalidParameter("fromImage is required")
    ref = reference.parse(image, default_tag=None)
    if tag:
        ref = reference.parse(f"{ref.repository}@{tag}" if tag.startswith("sha256:") else f"{ref.repository}:{tag}")
    all_tags = ref.tag is None and ref.digest is None
    auth = _auth(request)
    svc = service(eng)
    loop = asyncio.get_running_loop()

    async def op(out: pg.Output) -> None:
        try:
            results = await puller.pull(svc, ref, auth, out, platform=request.query.get("platform") or None,
                                        all_tags=all_tags)
        except HatobaError as e:
            from hatoba.images import bootstrap

            recipe = bootstrap.recipe_for(ref.familiar()) if not all_tags else None
            if recipe and not out.sent and getattr(eng.config, "bootstrap_missing_images", False):
                # daemon.json "bootstrap-missing-images": build it from Debian packages instead
                await asyncio.to_thread(bootstrap.bootstrap, eng.images, ref.familiar(),
                                        lambda s: loop.call_soon_threadsafe(out.send, pg.status(s)))
                return
            hint = _bootstrap_hint(ref) if not out.sent else ""
            if hint:
                raise type(e)(e.message + hint) from None
            raise
        for r in results:
            tags = eng.images.tags_of(r.image_id)
            name = ref.familiar() if not all_tags else (tags[0] if tags else ref.repository)
            eng.events.emit("image", "pull", name, {"name": ref.repository})

    return await stream(request, op)


async def push(request: web.Request) -> web.StreamResponse:
    """POST /images/{name}/push[?tag=TAG] (no tag: every tag of the repository)."""
    from hatoba.distribution import push as pusher

    eng = request.app["engine"]
    name = unquote(request["params"]["name"])
    tag = request.query.get("tag", "")
    ref = reference.parse(name, default_tag=None)
    if ref.digest:
        raise InvalidParameter("cannot push a digest reference")
    tag = tag or ref.tag or ""
    auth = _auth(request)
    svc = service(eng)

    async def op(out: pg.Output) -> None:
        results = await pusher.push(svc, ref, tag or None, auth, out, all_tags=not tag)
        for aux in results:
            fam = f"{ref.repository}:{aux['Tag']}"
            eng.events.emit("image", "push", fam, {"name": ref.repository})

    return await stream(request, op)


async def auth(request: web.Request) -> web.StreamResponse:
    """POST /auth {username, password, serveraddress} → {"IdentityToken","Status"}."""
    from hatoba.distribution.search import login

    body = await read_json(request)
    cfg = AuthConfig.from_dict(body)
    return json_response(await login(service(request.app["engine"]), cfg))


async def search(request: web.Request) -> web.StreamResponse:
    """GET /images/search?term=&limit=&filters= → Docker's search results."""
    from hatoba.distribution.search import search as do_search

    term = request.query.get("term", "")
    if not term:
        raise InvalidParameter("term is required")
    limit = qint(request, "limit")
    results = await do_search(service(request.app["engine"]), term, limit, qfilters(request), _auth(request))
    return json_response(results)


def register(r: Router) -> None:
    r.add("POST", "/auth", auth)
    r.add("GET", "/images/search", search)
    r.add("POST", "/images/{name:.+}/push", push)
