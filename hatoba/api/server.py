"""The Engine API application: routing with version prefixes, common headers, error mapping.

Routes are matched by our own table instead of aiohttp's router because Docker puts raw image
references (with `/` and `:`) in paths and prefixes every path with an optional `/v1.NN`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hatoba import __version__
from hatoba.errors import HatobaError

log = logging.getLogger("hatoba.api")

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
MAX_ACCEPTED = (1, 47)
SERVER = f"Docker/{__version__}-hatoba (linux)"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_VERSION = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


class Router:
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
    s = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    s = s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (s + "\n").encode()


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json_body(data), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status=status)


def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    v = request.query.get(name)
    if v is None:
        return default
    return v.lower() not in ("", "0", "false", "no")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return default
    try:
        return int(v)
    except ValueError:
        try:
            return int(float(v))
        except ValueError:
            raise HatobaError(f"invalid value for {name}: {v}") from None


def qfilters(request: web.Request) -> dict[str, list[str]]:
    """Docker's `filters` parameter: {"key": {"value": true}} or the older {"key": ["value"]}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        from hatoba.errors import InvalidParameter
        raise InvalidParameter("invalid filter: " + raw) from None
    out: dict[str, list[str]] = {}
    for k, v in (doc or {}).items():
        if isinstance(v, dict):
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list):
            out[k] = [str(x) for x in v]
        else:
            out[k] = [str(v)]
    return out


async def read_json(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as e:
        from hatoba.errors import InvalidParameter
        raise InvalidParameter(f"invalid JSON: {e}") from None
    return doc if isinstance(doc, dict) else {}


def make_app(engine: Any) -> web.Application:
    from hatoba.api import containers, distribution, images, system

    router = Router()
    system.register(router)
    containers.register(router)
    images.register(router)
    distribution.register(router)
    from hatoba.api import moving

    moving.register(router)  # save, load, commit

    async def dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path
        m = _VERSION.match(path)
        if m:
            ver = (int(m.group(1)), int(m.group(2)))
            path = m.group(3)
            if ver > MAX_ACCEPTED:
                return error_response(400, f"client version {m.group(1)}.{m.group(2)} is too new. Maximum "
                                           f"supported API version is {MAX_ACCEPTED[0]}.{MAX_ACCEPTED[1]}")
            if ver < (1, 12):
                return error_response(400, f"client version {m.group(1)}.{m.group(2)} is too old. Minimum "
                                           f"supported API version is {MIN_API_VERSION}, please upgrade your "
                                           "client to a newer version")
            request["api_version"] = ver
        else:
            request["api_version"] = (1, 41)
        handler, params, path_found = router.match(request.method, path)
        if handler is None:
            if path_found:
                return error_response(405, "method not allowed")
            return error_response(404, "page not found")
        request["params"] = params
        try:
            return await handler(request)
        except HatobaError as e:
            if e.status >= 500:
                log.info("%s %s: %s", request.method, path, e.message)
            return error_response(e.status, e.message)
        except (ConnectionResetError, BrokenPipeError):
            raise
        except Exception as e:  # noqa: BLE001 - report as Docker does: 500 + message
            log.exception("%s %s failed", request.method, path)
            return error_response(500, f"{type(e).__name__}: {e}")

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h["Api-Version"] = API_VERSION
        h["Docker-Experimental"] = "false"
        h["Ostype"] = "linux"
        h["Server"] = SERVER

    app = web.Application(client_max_size=0, handler_args={"max_field_size": 1 << 20})
    app["engine"] = engine
    app.on_response_prepare.append(on_prepare)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
