"""Container routes of the Engine API: parse the request, call the containers backend, serialise.

Log records are framed here (Docker's 8-byte headers unless the container has a TTY), with
timestamps when asked; everything else about a container is the backend's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, BinaryIO, Protocol

from aiohttp import web

from hatoba.api.common import (
    Router,
    backend,
    json_body,
    json_response,
    param,
    qbool,
    qfilters,
    qint,
    qtime_ns,
    read_body,
)
from hatoba.api.hijack import finish, upgrade
from hatoba.engine.attach import ClientStream
from hatoba.engine.logs import LogOptions
from hatoba.errors import InvalidParameter
from hatoba.schema import engine as schema
from hatoba.schema import query


class ContainerBackend(Protocol):
    async def create(self, body: dict[str, Any], name: str | None) -> tuple[Any, list[str]]: ...
    def list(self, *, all_: bool, limit: int, size: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]: ...
    def inspect(self, ref: str, size: bool = False) -> dict[str, Any]: ...
    async def start(self, ref: str) -> None: ...
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None: ...
    async def restart(self, ref: str, timeout: int | None = None) -> None: ...
    async def kill(self, ref: str, sig: str | None) -> None: ...
    async def pause(self, ref: str) -> None: ...
    async def unpause(self, ref: str) -> None: ...
    async def rename(self, ref: str, new: str) -> None: ...
    async def update(self, ref: str, body: dict[str, Any]) -> list[str]: ...
    async def remove(self, ref: str, force: bool = False, volumes: bool = False, link: bool = False) -> None: ...
    async def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...
    def wait(self, ref: str, condition: str) -> asyncio.Future: ...
    async def attach(self, ref: str, upgrade: Callable[[], Awaitable[ClientStream]], *, stdin: bool, stdout: bool,
                     stderr: bool, stream: bool, logs: bool, detach_keys: str | None) -> ClientStream: ...
    async def resize(self, ref: str, h: int, w: int) -> None: ...
    async def logs(self, ref: str, opts: LogOptions) -> AsyncIterator[bytes]: ...
    async def top(self, ref: str, ps_args: str) -> dict[str, Any]: ...
    async def changes(self, ref: str) -> list[dict[str, Any]] | None: ...
    async def stats(self, ref: str, *, stream: bool, one_shot: bool) -> AsyncIterator[dict[str, Any]]: ...
    async def export(self, ref: str) -> AsyncIterator[bytes]: ...
    async def archive_stat(self, ref: str, path: str) -> dict[str, Any]: ...
    async def archive_get(self, ref: str, path: str) -> tuple[dict[str, Any], AsyncIterator[bytes]]: ...
    async def archive_put(self, ref: str, path: str, body: BinaryIO, *, no_overwrite_dir_non_dir: bool) -> None: ...


def _b(request: web.Request) -> ContainerBackend:
    return backend(request, "containers")


def _id(request: web.Request) -> str:
    return param(request, "id")


def _no_content() -> web.Response:
    return web.Response(status=204)


async def create(request: web.Request) -> web.StreamResponse:
    body = schema.container_create(await read_body(request))
    c, warnings = await _b(request).create(body, request.query.get("name"))
    return json_response({"Id": c.id, "Warnings": warnings}, status=201)


async def list_(request: web.Request) -> web.StreamResponse:
    limit = qint(request, "limit", -1)
    out = _b(request).list(all_=qbool(request, "all"), limit=limit if limit is not None else -1,
                           size=qbool(request, "size"), filters=qfilters(request))
    return json_response(out)


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).inspect(_id(request), size=qbool(request, "size")))


async def start(request: web.Request) -> web.StreamResponse:
    await _b(request).start(_id(request))
    return _no_content()


async def stop(request: web.Request) -> web.StreamResponse:
    await _b(request).stop(_id(request), qint(request, "t"), request.query.get("signal"))
    return _no_content()


async def restart(request: web.Request) -> web.StreamResponse:
    await _b(request).restart(_id(request), qint(request, "t"))
    return _no_content()


async def kill(request: web.Request) -> web.StreamResponse:
    await _b(request).kill(_id(request), request.query.get("signal"))
    return _no_content()


async def pause(request: web.Request) -> web.StreamResponse:
    await _b(request).pause(_id(request))
    return _no_content()


async def unpause(request: web.Request) -> web.StreamResponse:
    await _b(request).unpause(_id(request))
    return _no_content()


async def rename(request: web.Request) -> web.StreamResponse:
    await _b(request).rename(_id(request), request.query.get("name", ""))
    return _no_content()


async def update(request: web.Request) -> web.StreamResponse:
    warnings = await _b(request).update(_id(request), schema.container_update(await read_body(request)))
    return json_response({"Warnings": warnings})


async def remove(request: web.Request) -> web.StreamResponse:
    await _b(request).remove(_id(request), force=qbool(request, "force"), volumes=qbool(request, "v"),
                             link=qbool(request, "link"))
    return _no_content()


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response(await _b(request).prune(qfilters(request)))


async def wait(request: web.Request) -> web.StreamResponse:
    fut = _b(request).wait(_id(request), request.query.get("condition") or "not-running")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    code = await fut
    with contextlib.suppress(ConnectionError):
        # Always null, as in the traces (03, 19): a non-null Error makes the docker CLI print
        # "Error waiting for container: …" after a failed start it has already reported.
        await resp.write(json_body({"Error": None, "StatusCode": code}))
        await resp.write_eof()
    return resp


async def attach(request: web.Request) -> web.StreamResponse:
    conn = await _b(request).attach(
        _id(request), lambda: upgrade(request), stdin=qbool(request, "stdin"), stdout=qbool(request, "stdout"),
        stderr=qbool(request, "stderr"), stream=qbool(request, "stream"), logs=qbool(request, "logs"),
        detach_keys=request.query.get("detachKeys"))
    return await finish(conn)  # type: ignore[arg-type]


async def resize(request: web.Request) -> web.StreamResponse:
    await _b(request).resize(_id(request), qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
    return web.Response(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})


# ---- logs -----------------------------------------------------------------------------------------

async def container_logs(request: web.Request) -> web.StreamResponse:
    opts = LogOptions(stdout=qbool(request, "stdout"), stderr=qbool(request, "stderr"),
                      follow=qbool(request, "follow"), since_ns=qtime_ns(request, "since"),
                      until_ns=qtime_ns(request, "until"), tail=query.tail(request.query.get("tail")),
                      timestamps=qbool(request, "timestamps"))
    pieces = await _b(request).logs(_id(request), opts)
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


# ---- top, changes, stats, export, archive -----------------------------------------------------------

async def top(request: web.Request) -> web.StreamResponse:
    return json_response(await _b(request).top(_id(request), request.query.get("ps_args") or ""))


async def changes(request: web.Request) -> web.StreamResponse:
    return json_response(await _b(request).changes(_id(request)))


async def _stream_chunks(request: web.Request, resp: web.StreamResponse, chunks: AsyncIterator[bytes]) -> web.StreamResponse:
    await resp.prepare(request)
    try:
        async for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def export(request: web.Request) -> web.StreamResponse:
    chunks = await _b(request).export(_id(request))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.enable_chunked_encoding()
    return await _stream_chunks(request, resp, chunks)


def _stat_header(st: dict) -> str:
    return base64.b64encode(json.dumps(st, separators=(",", ":")).encode()).decode()


async def archive_head(request: web.Request) -> web.StreamResponse:
    st = await _b(request).archive_stat(_id(request), request.query.get("path", ""))
    return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": _stat_header(st)})


async def archive_get(request: web.Request) -> web.StreamResponse:
    st, chunks = await _b(request).archive_get(_id(request), request.query.get("path", ""))
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar",
                                       "X-Docker-Container-Path-Stat": _stat_header(st)})
    resp.enable_chunked_encoding()
    return await _stream_chunks(request, resp, chunks)


async def archive_put(request: web.Request) -> web.StreamResponse:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("bad parameter: path cannot be empty")
    no_overwrite = qbool(request, "noOverwriteDirNonDir")
    with tempfile.TemporaryFile() as tmp:
        async for chunk in request.content.iter_chunked(1 << 20):
            tmp.write(chunk)
        tmp.seek(0)
        await _b(request).archive_put(_id(request), path, tmp, no_overwrite_dir_non_dir=no_overwrite)
    return web.Response(status=200)


async def stats(request: web.Request) -> web.StreamResponse:
    stream = qbool(request, "stream", True)
    docs = await _b(request).stats(_id(request), stream=stream, one_shot=qbool(request, "one-shot"))
    if not stream:
        async for doc in docs:
            return json_response(doc)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for doc in docs:
            await resp.write(json_body(doc))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


def register(r: Router) -> None:
    r.add("POST", "/containers/create", create)
    r.add("GET", "/containers/json", list_)
    r.add("POST", "/containers/prune", prune)
    r.add("GET", "/containers/{id}/json", inspect)
    r.add("POST", "/containers/{id}/start", start)
    r.add("POST", "/containers/{id}/stop", stop)
    r.add("POST", "/containers/{id}/restart", restart)
    r.add("POST", "/containers/{id}/kill", kill)
    r.add("POST", "/containers/{id}/pause", pause)
    r.add("POST", "/containers/{id}/unpause", unpause)
    r.add("POST", "/containers/{id}/rename", rename)
    r.add("POST", "/containers/{id}/update", update)
    r.add("POST", "/containers/{id}/wait", wait)
    r.add("POST", "/containers/{id}/attach", attach)
    r.add("POST", "/containers/{id}/resize", resize)
    r.add("GET", "/containers/{id}/logs", container_logs)
    r.add("GET", "/containers/{id}/top", top)
    r.add("GET", "/containers/{id}/changes", changes)
    r.add("GET", "/containers/{id}/stats", stats)
    r.add("GET", "/containers/{id}/export", export)
    r.add("HEAD", "/containers/{id}/archive", archive_head)
    r.add("GET", "/containers/{id}/archive", archive_get)
    r.add("PUT", "/containers/{id}/archive", archive_put)
    r.add("DELETE", "/containers/{id}", remove)
