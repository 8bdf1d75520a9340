"""The Engine API application: version prefixes, routing, common headers, error mapping.

Routes are matched by our own table (`common.Router`) instead of aiohttp's router because Docker
puts raw image references (with `/` and `:`) in paths and prefixes every path with an optional
`/v1.NN`. Each router module works against its backend (a `typing.Protocol` it declares); the
daemon hands the engine's objects in as `make_app(containers=..., ...)`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from hatoba import __version__
from hatoba.api import containers, distribution, execs, images, moving, system
from hatoba.api.common import API_VERSION as API_VERSION_KEY
from hatoba.api.common import BACKEND_KEYS, BACKENDS, HIJACKED, PARAMS, Router, error_response
from hatoba.api.hijack import finish
from hatoba.errors import HatobaError
from hatoba.schema import engine as schema

log = logging.getLogger("hatoba.api")

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
MAX_ACCEPTED = (1, 47)
SERVER = f"Docker/{__version__}-hatoba (linux)"

_VERSION = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")


class _ProtocolErrors(logging.Filter):
    """aiohttp logs a client's malformed request (bad header bytes, bad request line) with a traceback;
    it has already answered 400. Keep one line and drop the traceback: it is not a daemon error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()}: {exc.code} {exc.message!r}"
            record.args = ()
        return True


_SERVER_LOG = logging.getLogger("aiohttp.server")
if not any(isinstance(f, _ProtocolErrors) for f in _SERVER_LOG.filters):
    _SERVER_LOG.addFilter(_ProtocolErrors())


def routes() -> Router:
    router = Router()
    system.register(router)
    containers.register(router)
    execs.register(router)
    images.register(router)
    distribution.register(router)
    moving.register(router)  # save, load, commit
    return router


class _Gone(web.Response):
    """What a handler whose client went away returns: aiohttp writes nothing more for it."""

    async def prepare(self, request: web.BaseRequest) -> None:  # type: ignore[override]
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


_GONE = _Gone()


def make_app(**backends: Any) -> web.Application:
    """The aiohttp application over the given backends (see BACKENDS; missing ones answer 500)."""
    router = routes()

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
            request[API_VERSION_KEY] = ver
        else:
            request[API_VERSION_KEY] = (1, 41)
        handler, params, path_found = router.match(request.method, path)
        if handler is None:
            if path_found:
                return error_response(405, "method not allowed")
            return error_response(404, "page not found")
        request[PARAMS] = params
        try:
            return await handler(request)
        except HatobaError as e:
            if e.status >= 500:
                log.info("%s %s: %s", request.method, path, e.message)
            if HIJACKED in request:  # the answer went out already: the stream just ends
                return await finish(request[HIJACKED])
            return error_response(e.status, e.message)
        except (ConnectionResetError, BrokenPipeError):  # the client went away mid-answer: nothing to say
            log.debug("%s %s: the client closed the connection", request.method, path)
            if HIJACKED in request:
                return await finish(request[HIJACKED])
            if request.transport is not None:
                request.transport.close()
            return _GONE
        except Exception:  # noqa: BLE001 - a bug of ours: log it, answer without internals
            log.exception("%s %s failed", request.method, path)
            if HIJACKED in request:
                return await finish(request[HIJACKED])
            return error_response(500, "internal server error (see the daemon log)")

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        h = response.headers
        h["Api-Version"] = API_VERSION
        h["Docker-Experimental"] = "false"
        h["Ostype"] = "linux"
        h["Server"] = SERVER

    app = web.Application(client_max_size=0, handler_args={"max_field_size": 1 << 20})
    for name in BACKENDS:
        if name in backends:
            app[BACKEND_KEYS[name]] = backends[name]
    async def compile_schemas(app: web.Application) -> None:
        # the body validators compile in about 0.5 s: do it in the background, not on a first request
        asyncio.get_running_loop().run_in_executor(None, schema.prepare)

    app.on_response_prepare.append(on_prepare)
    app.on_startup.append(compile_schemas)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
