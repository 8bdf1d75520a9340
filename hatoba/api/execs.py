"""Exec routes of the Engine API: create, start (hijacked unless detached), inspect, resize."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from hatoba.api.common import Router, backend, json_response, param, qint, read_json
from hatoba.api.hijack import finish, upgrade
from hatoba.engine.attach import ClientStream

# the exec start's hijacked stream carries these headers too (trace 22/23), after the 101 line
_EXTRA = b"Api-Version: 1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\n"


class ExecBackend(Protocol):
    def create(self, ref: str, body: dict[str, Any]) -> str: ...
    async def start(self, eid: str, *, detach: bool, tty: bool | None,
                    upgrade: Callable[[], Awaitable[ClientStream]] | None = None) -> ClientStream | None: ...
    def inspect(self, eid: str) -> dict[str, Any]: ...
    async def resize(self, eid: str, h: int, w: int) -> None: ...


def _b(request: web.Request) -> ExecBackend:
    return backend(request, "execs")


async def exec_create(request: web.Request) -> web.StreamResponse:
    eid = _b(request).create(param(request, "id"), await read_json(request))
    return json_response({"Id": eid}, status=201)


async def exec_start(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    detach = bool(body.get("Detach"))
    tty = body.get("Tty")
    conn = await _b(request).start(param(request, "id"), detach=detach, tty=None if tty is None else bool(tty),
                                   upgrade=lambda: upgrade(request, _EXTRA))
    if conn is None:
        return web.Response(status=200, headers={"Content-Type": "application/json"})
    return await finish(conn)  # type: ignore[arg-type]


async def exec_inspect(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).inspect(param(request, "id")))


async def exec_resize(request: web.Request) -> web.StreamResponse:
    await _b(request).resize(param(request, "id"), qint(request, "h", 0) or 0, qint(request, "w", 0) or 0)
    return web.Response(status=200, headers={"Content-Type": "text/plain; charset=utf-8"})


def register(r: Router) -> None:
    r.add("POST", "/containers/{id}/exec", exec_create)
    r.add("POST", "/exec/{id}/start", exec_start)
    r.add("GET", "/exec/{id}/json", exec_inspect)
    r.add("POST", "/exec/{id}/resize", exec_resize)
