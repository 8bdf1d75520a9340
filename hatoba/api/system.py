"""System routes: _ping, version, info, events, system df, and the object stubs the CLI probes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from hatoba.api.common import Router, backend, error_response, json_body, json_response, param, qfilters
from hatoba.errors import InvalidParameter


class SystemBackend(Protocol):
    def version(self) -> dict[str, Any]: ...
    def info(self) -> dict[str, Any]: ...
    def df(self) -> dict[str, Any]: ...
    def events(self, *, since: float | None, until: float | None,
               filters: dict[str, list[str]]) -> AsyncIterator[dict[str, Any]]: ...


def _b(request: web.Request) -> SystemBackend:
    return backend(request, "system")


async def ping(request: web.Request) -> web.StreamResponse:
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}
    body = b"" if request.method == "HEAD" else b"OK"
    # an empty body already gives Content-Length: 0 (aiohttp refuses an explicit content_length here)
    return web.Response(body=body, headers=headers, content_type="text/plain", charset="utf-8")


async def version(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).version())


async def info(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).info())


def time_param(v: str | None, now: float | None = None) -> float | None:
    """dockerd's timetypes.GetTimestamp: unix seconds[.frac], RFC 3339 forms, or a Go duration before now."""
    if v is None or v == "":
        return None
    try:
        t = float(v)
    except ValueError:
        from hatoba.images.store import parse_rfc3339

        try:
            t = parse_rfc3339(v)
        except ValueError:
            d = _go_duration(v)
            if d is None:
                raise InvalidParameter(f'failed to parse value as time or duration: "{v}"') from None
            t = (time.time() if now is None else now) - d
    if t != t or t in (float("inf"), float("-inf")):
        raise InvalidParameter(f'failed to parse value as time or duration: "{v}"')
    return t


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _go_duration(s: str) -> float | None:
    import re

    m = re.fullmatch(r"([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+", s)
    if not m:
        return None
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", s):
        total += float(num) * _UNITS[unit]
    return -total if m.group(1) == "-" else total


async def events(request: web.Request) -> web.StreamResponse:
    now = time.time()
    since = time_param(request.query.get("since"), now)
    until = time_param(request.query.get("until"), now)
    evs = _b(request).events(since=since, until=until, filters=qfilters(request))
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for ev in evs:
            await resp.write(json_body(ev))
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def system_df(request: web.Request) -> web.StreamResponse:
    return json_response(_b(request).df())


async def not_found_network(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"network {param(request, 'id')} not found")


async def networks(request: web.Request) -> web.StreamResponse:
    return json_response([])


async def not_found_volume(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"get {param(request, 'name')}: no such volume")


async def volumes(request: web.Request) -> web.StreamResponse:
    return json_response({"Volumes": [], "Warnings": None})


async def not_found_plugin(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"plugin \"{param(request, 'name')}\" not found")


def register(r: Router) -> None:
    r.add("GET", "/_ping", ping)
    r.add("HEAD", "/_ping", ping)
    r.add("GET", "/version", version)
    r.add("GET", "/info", info)
    r.add("GET", "/events", events)
    r.add("GET", "/system/df", system_df)
    r.add("GET", "/networks", networks)
    r.add("GET", "/networks/{id}", not_found_network)
    r.add("GET", "/volumes", volumes)
    r.add("GET", "/volumes/{name}", not_found_volume)
    r.add("GET", "/plugins/{name:.+}/json", not_found_plugin)
