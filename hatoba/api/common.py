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

from hatoba.errors import InvalidParameter

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


# ---- query parameters (dockerd's parsing and messages) ----------------------------------------------

def qbool(request: web.Request, name: str, default: bool = False) -> bool:
    """httputils.BoolValue: absent → default; "", "0", "no", "false", "none" → false; else true."""
    v = request.query.get(name)
    if v is None:
        return default
    return v.strip().lower() not in ("", "0", "no", "false", "none")


def qint(request: web.Request, name: str, default: int | None = None) -> int | None:
    """strconv.Atoi of a query value ("" or absent → default)."""
    v = request.query.get(name)
    if v is None or v == "":
        return default
    s = v.strip()
    if s[:1] in "+-":
        digits = s[1:]
    else:
        digits = s
    if not digits.isdigit() or not digits.isascii():
        raise InvalidParameter(f'strconv.Atoi: parsing "{v}": invalid syntax')
    n = int(s)
    if not -(1 << 63) <= n < (1 << 63):
        raise InvalidParameter(f'strconv.Atoi: parsing "{v}": value out of range')
    return n


def qfilters(request: web.Request) -> dict[str, list[str]]:
    """Docker's `filters` parameter: {"key": {"value": true}} or the older {"key": ["value"]}."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise InvalidParameter(f"invalid filter: {raw}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(doc)} into Go value of type "
                               "map[string]map[string]bool")
    out: dict[str, list[str]] = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            if not all(isinstance(on, bool) for on in v.values()):
                raise InvalidParameter("json: cannot unmarshal into Go value of type map[string]map[string]bool")
            out[k] = [x for x, on in v.items() if on]
        elif isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        elif v is None:
            out[k] = []
        else:
            raise InvalidParameter(f"json: cannot unmarshal {_json_kind(v)} into Go value of type map[string]bool")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object ({} when empty)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidParameter("invalid character '[' exceeded max depth") from None
    except ValueError as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_json_kind(doc)} into Go value of type map[string]interface {{}}")
    return doc
