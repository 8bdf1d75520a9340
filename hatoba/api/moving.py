"""Routes that move images: save (`GET /images/get`, `GET /images/{name}/get`), load
(`POST /images/load`) and commit (`POST /commit`).

The archive work runs in a thread; its tar output goes straight to the response and the request
body is read from it on demand, so neither is held whole in memory and a slow client slows the
thread down instead of piling up data.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any, Protocol
from urllib.parse import unquote

from aiohttp import web

from hatoba.api.common import PARAMS, Router, backend, json_response, qbool, read_json
from hatoba.api.images import ImageBackend, msg
from hatoba.errors import HatobaError, InvalidParameter

log = logging.getLogger("hatoba.api")
_CHUNK = 1 << 20


class MovingBackend(ImageBackend, Protocol):
    def resolve_for_save(self, names: list[str]) -> list[tuple[Any, list[str]]]: ...
    def save(self, images: list[tuple[Any, list[str]]], out: Any, fmt: str) -> None: ...
    def saved(self, images: list[tuple[Any, list[str]]]) -> None: ...
    def load(self, body: Any, emit: Any, quiet: bool) -> list[str]: ...
    def loaded(self, ids: list[str]) -> None: ...
    async def commit(self, container: str, *, repo: str, tag: str, author: str, comment: str,
                     changes_: list[str], pause: bool, config: dict[str, Any] | None) -> str: ...


def _b(request: web.Request) -> MovingBackend:
    return backend(request, "images")


class _ResponseWriter:
    """A file-like for the worker thread that writes into the streamed response on the loop."""

    def __init__(self, resp: web.StreamResponse, loop: asyncio.AbstractEventLoop):
        self._resp, self._loop = resp, loop
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            asyncio.run_coroutine_threadsafe(self._resp.write(chunk), self._loop).result()


class _BodyReader(io.RawIOBase):
    """The request body as a blocking file for the worker thread."""

    def __init__(self, content: Any, loop: asyncio.AbstractEventLoop):
        self._content, self._loop = content, loop
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if not self._pending:
            self._pending = asyncio.run_coroutine_threadsafe(self._content.read(_CHUNK), self._loop).result()
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


async def save(request: web.Request) -> web.StreamResponse:
    b = _b(request)
    if "name" in request[PARAMS]:
        names = [unquote(request[PARAMS]["name"])]
    else:
        names = request.query.getall("names", [])
    fmt = request.query.get("format") or "docker"  # hatoba extension: format=oci adds an OCI layout
    if fmt not in ("docker", "oci"):
        raise InvalidParameter(f"unknown archive format {fmt!r}: use docker or oci")
    images = await asyncio.to_thread(b.resolve_for_save, names)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    out = _ResponseWriter(resp, asyncio.get_running_loop())

    def work() -> None:
        b.save(images, out, fmt)
        out.flush()

    try:
        await asyncio.to_thread(work)
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as e:  # noqa: BLE001 - headers are gone: cut the stream so the client sees it fail
        log.warning("image save failed after the response started: %s", e)
        if request.transport is not None:
            request.transport.close()
        return resp
    b.saved(images)
    await resp.write_eof()
    return resp


async def load(request: web.Request) -> web.StreamResponse:
    b = _b(request)
    quiet = qbool(request, "quiet", True)
    loop = asyncio.get_running_loop()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue = asyncio.Queue()

    def emit(m: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, m)

    body = io.BufferedReader(_BodyReader(request.content, loop), _CHUNK)
    task = asyncio.ensure_future(asyncio.to_thread(b.load, body, emit, quiet))
    while not task.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await resp.write(msg(getter.result()))
        else:
            getter.cancel()
    try:
        ids = task.result()
    except HatobaError as e:
        await resp.write(msg({"errorDetail": {"message": e.message}, "error": e.message}))
        await _drain(request)
    except Exception:  # noqa: BLE001 - reported in-stream, as dockerd does
        log.exception("image load failed")
        text = "internal error while loading the archive (see the daemon log)"
        await resp.write(msg({"errorDetail": {"message": text}, "error": text}))
        await _drain(request)
    else:
        b.loaded(ids)
    await resp.write_eof()
    return resp


async def _drain(request: web.Request, limit: int = 1 << 30) -> None:
    """Read (and drop) what is left of a refused upload, so a client still sending it gets the error
    message instead of a broken pipe."""
    seen = 0
    try:
        while seen < limit:
            chunk = await request.content.read(_CHUNK)
            if not chunk:
                return
            seen += len(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception:  # noqa: BLE001 - the client went away or sent garbage: nothing more to do
        return


async def commit(request: web.Request) -> web.StreamResponse:
    q = request.query
    config = await read_json(request) or None
    iid = await _b(request).commit(q.get("container", ""), repo=q.get("repo", ""), tag=q.get("tag", ""),
                                   author=q.get("author", ""), comment=q.get("comment", ""),
                                   changes_=q.getall("changes", []), pause=qbool(request, "pause", True),
                                   config=config)
    return json_response({"Id": iid}, status=201)


def register(r: Router) -> None:
    r.add("GET", "/images/get", save)
    r.add("POST", "/images/load", load)
    r.add("GET", "/images/{name:.+}/get", save)
    r.add("POST", "/commit", commit)
