"""Local image routes of the Engine API: list, inspect, history, tag, delete, prune, import, and
hatoba's own base-image bootstrap. Registry routes are in `distribution`, save/load/commit in `moving`."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from typing import IO, Any, Protocol
from urllib.parse import unquote

from aiohttp import web

from hatoba.api import distribution
from hatoba.api.common import Router, backend, json_response, param, qbool, qfilters
from hatoba.distribution import progress as pg
from hatoba.errors import HatobaError, InvalidParameter


class ImageBackend(Protocol):
    def list(self, *, all_: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]: ...
    def inspect(self, name: str) -> dict[str, Any]: ...
    def history(self, name: str) -> list[dict[str, Any]]: ...
    def tag(self, name: str, repo: str, tag: str) -> None: ...
    def delete(self, name: str, *, force: bool) -> list[dict[str, str]]: ...
    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]: ...
    async def import_image(self, body: IO[bytes], *, repo: str, tag: str, changes_: list[str],
                           message: str) -> str: ...
    def bootstrap_recipe(self, name: str) -> str: ...
    def bootstrap(self, name: str, progress: Callable[[str], None]) -> Any: ...
    def bootstrapped(self, name: str, img: Any) -> None: ...


def _b(request: web.Request) -> ImageBackend:
    return backend(request, "images")


def _name(request: web.Request) -> str:
    return unquote(param(request, "name"))


def msg(d: dict) -> bytes:
    """One progress message as dockerd streams them (compact JSON, <>& escaped, CRLF)."""
    return pg.encode(d)


async def start_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    return resp


async def list_(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).list(all_=qbool(request, "all"), filters=qfilters(request)))


async def inspect(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).inspect(_name(request)))


async def history(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).history(_name(request)))


async def tag(request: web.Request) -> web.StreamResponse:
    _b(request).tag(_name(request), request.query.get("repo", ""), request.query.get("tag", ""))
    return web.Response(status=201)


async def delete(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).delete(_name(request), force=qbool(request, "force")))


async def prune(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).prune(qfilters(request)))


async def create(request: web.Request) -> web.StreamResponse:
    if request.query.get("fromSrc") is not None:
        return await _import(request)


    return await distribution.pull(request)


async def _import(request: web.Request) -> web.StreamResponse:
    if request.query.get("fromSrc") != "-":
        raise InvalidParameter("importing from a URL is not supported; send the tar in the request body")
    with tempfile.TemporaryFile() as tmp:
        async for chunk in request.content.iter_chunked(1 << 20):
            tmp.write(chunk)
        tmp.seek(0)
        iid = await _b(request).import_image(tmp, repo=request.query.get("repo", ""),
                                             tag=request.query.get("tag", ""),
                                             changes_=request.query.getall("changes", []),
                                             message=request.query.get("message", ""))
    resp = await start_stream(request)
    await resp.write(msg({"status": iid}))
    await resp.write_eof()
    return resp


async def do_bootstrap(request: web.Request) -> web.StreamResponse:
    """hatoba's own endpoint: POST /hatoba/images/bootstrap?name=busybox — streams progress."""
    b = _b(request)
    name = request.query.get("name", "")
    b.bootstrap_recipe(name)
    resp = await start_stream(request)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    def progress(line: str) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, line)

    task = asyncio.ensure_future(asyncio.to_thread(b.bootstrap, name, progress))
    while not task.done() or not queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            await resp.write(msg({"status": getter.result()}))
        else:
            getter.cancel()
    try:
        img = task.result()
    except HatobaError as e:
        await resp.write(msg({"errorDetail": {"message": e.message}, "error": e.message}))
    except Exception as e:  # noqa: BLE001 - reported in-stream like a failed pull
        await resp.write(msg({"errorDetail": {"message": str(e)}, "error": str(e)}))
    else:
        b.bootstrapped(name, img)
        await resp.write(msg({"status": f"Bootstrapped {b.bootstrap_recipe(name)}: {img.id}"}))
    await resp.write_eof()
    return resp


def register(r: Router) -> None:
    r.add("GET", "/images/json", list_)
    r.add("POST", "/images/create", create)
    r.add("POST", "/images/prune", prune)
    r.add("POST", "/hatoba/images/bootstrap", do_bootstrap)
    r.add("GET", "/images/{name:.+}/json", inspect)
    r.add("GET", "/images/{name:.+}/history", history)
    r.add("POST", "/images/{name:.+}/tag", tag)
    r.add("DELETE", "/images/{name:.+}", delete)
