"""What every router shares: the route table, JSON bodies and answers in dockerd's encoding, query
parameters, and hijacking a connection for a raw stream.

Routers import this module, never `server` (which imports the routers).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hatoba.schema import jsonload, query

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

BACKENDS = ("containers", "execs", "images", "registry", "system")
BACKEND_KEYS: dict[str, web.AppKey[Any]] = {n: web.AppKey(n, object) for n in BACKENDS}
PARAMS = web.RequestKey("params", dict)
API_VERSION = web.RequestKey("api_version", tuple)
HIJACKED = web.RequestKey("hijacked", object)  # set once the connection carries a raw stream


class Router:
    """Routes with `{name}` / `{name:regex}` placeholders, matched in order; HEAD falls back to GET."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        rx = "^" + re.sub(r"\{(\w+)(?::([^}]+))?\}", lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})",
                          pattern) + "$"
        self.routes.append((method, re.compile(rx), handler))

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        path_found = False
        for m, rx, h in self.routes:
            mm = rx.match(path)
            if mm:
                if m == method or (method == "HEAD" and m == "GET" and not any(
                        r[0] == "HEAD" and r[1].match(path) for r in self.routes)):
                    return h, mm.groupdict(), True
                path_found = True
        return None, {}, path_found


def json_body(data: Any) -> bytes:
    """JSON as Go's encoder writes it: compact, `<>&` escaped, newline-terminated."""
    s = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (s + "\n").encode()


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json_body(data), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status=status)


def backend(request: web.Request, name: str) -> Any:
    """The backend object a router works with (`containers`, `execs`, `images`, `registry`, `system`)."""
    return request.app[BACKEND_KEYS[name]]


def param(request: web.Request, name: str) -> str:
    """A path parameter."""
    return request[PARAMS][name]


# ---- query parameters and bodies (hatoba.schema: dockerd's parsing and messages) ---------------------

def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """httputils.BoolValueOrDefault: absent → default; "", "0", "no", "false", "none" → false."""
    return query.bool_param(request.query, name, default)


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    """strconv.Atoi of a query value ("" or absent → default); 400 with Go's message otherwise."""
    return query.int_param(request.query, name, default)


def qfilters(request: web.Request) -> dict[str, list[str]]:
    """Docker's `filters` parameter ({"key": {"value": true}} or the older {"key": ["value"]})."""
    return query.filter_values(request.query.get("filters"))


def qtime_ns(request: web.Request, name: str) -> int:
    """A `since`/`until` value (unix seconds with an optional fraction) in nanoseconds; 0 when absent."""
    sec, nsec = query.timestamp(request.query.get(name))
    return sec * 1_000_000_000 + nsec


async def read_body(request: web.Request) -> Any:
    """The request body decoded as Go's json.Decoder does (None when empty); 400 on bad JSON."""
    return jsonload.decode(await request.read())
