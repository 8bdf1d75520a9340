"""Routes that move images: save (`GET /images/get`, `GET /images/{name}/get`), load
(`POST /images/load`) and commit (`POST /commit`).

The archive work runs in a thread; its tar output goes straight to the response and the request
body is read from it on demand, so neither is held whole in memory and a slow client slows the
thread down instead of piling up data.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from hatoba.api.server import Router, json_response, qbool
from hatoba.engine import commit as commit_mod
from hatoba.errors import HatobaError, InvalidParameter
from hatoba.images import archive

log = logging.getLogger("hatoba.api")
_CHUNK = 1 << 20


def _eng(request: web.Request) -> Any:
    return request.app["engine"]


def _msg(d: dict) -> bytes:
    return json.dumps(d, separators=(",", ":")).encode() + b"\r\n"


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
    eng = _eng(request)
    if "name" in request["params"]:
        names = [unquote(request["params"]["name"])]
    else:
        names = request.query.getall("names", [])
    fmt = request.query.get("format") or "docker"  # hatoba extension: format=oci adds an OCI layout
    if fmt not in ("docker", "oci"):
        raise InvalidParameter(f"unknown archive format {fmt!r}: use docker or oci")
    images = await asyncio.to_thread(archive.resolve, eng.images, names)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    loop = asyncio.get_running_loop()
    out = _ResponseWriter(resp, loop)

    def work() -> None:
        archive.save(eng.images, images, out, fmt=fmt)
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
    for img, _ in images:
        eng.events.emit("image", "save", img.id, {"name": img.id})
    await resp.write_eof()
    return resp


async def load(request: web.Request) -> web.StreamResponse:
    eng = _eng(request)
    quiet = qbool(request, "quiet", True)
    loop = asyncio.get_running_loop()
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue = asyncio.Queue()

    def emit(msg: dict) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, msg)

    body = io.BufferedReader(_BodyReader(request.content, loop), _CHUNK)
    task = asyncio.ensure_future(asyncio.to_thread(archive.load, eng.images, body, emit, quiet=quiet))
    while not task.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await resp.write(_msg(getter.result()))
        else:
            getter.cancel()
    try:
        result = task.result()
    except HatobaError as e:
        await resp.write(_msg({"errorDetail": {"message": e.message}, "error": e.message}))
        await _drain(request)
    except Exception as e:  # noqa: BLE001 - reported in-stream, as dockerd does
        log.exception("image load failed")
        await resp.write(_msg({"errorDetail": {"message": str(e)}, "error": str(e)}))
        await _drain(request)
    else:
        for iid in result.images:
            eng.events.emit("image", "load", iid, {"name": iid})
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
    eng = _eng(request)
    q = request.query
    ref = commit_mod.parse_repo_tag(q.get("repo", ""), q.get("tag", ""))
    raw = await request.read()
    config = None
    if raw.strip():
        try:
            doc = json.loads(raw)
        except ValueError as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None
        if isinstance(doc, dict) and doc:
            config = doc
    iid = await commit_mod.commit(eng.containers, eng.images, q.get("container", ""), ref=ref,
                                  author=q.get("author", ""), comment=q.get("comment", ""),
                                  changes=q.getall("changes", []), pause=qbool(request, "pause", True),
                                  config=config)
    return json_response({"Id": iid}, status=201)


def register(r: Router) -> None:
    r.add("GET", "/images/get", save)
    r.add("POST", "/images/load", load)
    r.add("GET", "/images/{name:.+}/get", save)
    r.add("POST", "/commit", commit)
