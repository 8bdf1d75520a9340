"""A small Engine API client on the standard library: HTTP/1.1 over a unix socket or TCP.

Used by every CLI command. It imports nothing heavy, so `hatoba ps` starts fast. Paths are
sent with the `/v1.41` prefix, without a `_ping` round trip first.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlparse

DEFAULT_HOST = "unix:///run/hatoba/hatoba.sock"
API_PREFIX = "/v1.41"


class APIError(Exception):
    """An error answer from the daemon: its status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    pass


def resolve_host(host: str | None = None) -> str:
    return host or os.environ.get("HATOBA_HOST") or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self._path)
        except OSError as e:
            s.close()
            raise ConnectError(f"Cannot connect to the hatoba daemon at unix://{self._path}. "
                               "Is the hatoba daemon running?") from e
        self.sock = s


def _q(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    items = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        if isinstance(v, (list, tuple)):
            items.extend((k, str(x)) for x in v)
        else:
            items.append((k, str(v)))
    return "?" + urlencode(items) if items else ""


def quote_ref(ref: str) -> str:
    """Escape a name for a path segment but keep `/` and `:` raw, as the docker CLI does."""
    return quote(ref, safe="/:@")


class Client:
    def __init__(self, host: str | None = None, timeout: float | None = None):
        self.host = resolve_host(host)
        self.timeout = timeout
        u = urlparse(self.host)
        self._scheme = u.scheme or "unix"
        self._path = u.path if self._scheme == "unix" else ""
        self._netloc = (u.hostname or "127.0.0.1", u.port or 2375)
        self._conn: http.client.HTTPConnection | None = None

    # ---- plumbing ---------------------------------------------------------------------------------

    def _tls(self):  # type: ignore[no-untyped-def]
        """An SSL context when TLS is asked for (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or https://)."""
        verify = os.environ.get("HATOBA_TLS_VERIFY") or os.environ.get("DOCKER_TLS_VERIFY")
        if self._scheme != "https" and not verify and not os.environ.get("HATOBA_HOST_TLS"):
            return None
        import ssl

        certs = os.environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        ca = os.environ.get("HATOBA_TLS_CACERT") or os.path.join(certs, "ca.pem")
        cert = os.environ.get("HATOBA_TLS_CERT") or os.path.join(certs, "cert.pem")
        key = os.environ.get("HATOBA_TLS_KEY") or os.path.join(certs, "key.pem")
        ctx = ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if os.path.exists(cert) and os.path.exists(key):
            ctx.load_cert_chain(cert, key)
        return ctx

    def _new_conn(self) -> http.client.HTTPConnection:
        if self._scheme == "unix":
            return _UnixConnection(self._path, self.timeout)
        ctx = self._tls()
        if ctx is not None:
            return http.client.HTTPSConnection(*self._netloc, timeout=self.timeout, context=ctx)
        if self._scheme in ("tcp", "http"):
            return http.client.HTTPConnection(*self._netloc, timeout=self.timeout)
        raise ConnectError(f"unsupported host: {self.host}")

    def _raw_socket(self) -> socket.socket:
        if self._scheme == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self._path)
            except OSError as e:
                s.close()
                raise ConnectError(f"Cannot connect to the hatoba daemon at {self.host}. "
                                   "Is the hatoba daemon running?") from e
            return s
        try:
            s = socket.create_connection(self._netloc)
            ctx = self._tls()
            return ctx.wrap_socket(s, server_hostname=self._netloc[0]) if ctx is not None else s
        except OSError as e:
            raise ConnectError(f"Cannot connect to the hatoba daemon at {self.host}. "
                               "Is the hatoba daemon running?") from e

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, *, body: Any = None,
                headers: dict[str, str] | None = None, new_conn: bool = False) -> http.client.HTTPResponse:
        """Send a request; returns the response (raising APIError on an error status)."""
        hdrs = {"User-Agent": "hatoba-cli"}
        if headers:
            hdrs.update(headers)
        data: Any = None
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif body is not None:
            data = body  # iterable of bytes or file: sent chunked
            hdrs.setdefault("Transfer-Encoding", "chunked")
            hdrs.setdefault("Content-Type", "application/x-tar")
        conn = self._new_conn() if new_conn or self._conn is None else self._conn
        if not new_conn:
            self._conn = conn
        url = API_PREFIX + path + _q(params)
        try:
            if data is not None and not isinstance(data, bytes):
                conn.request(method, url, body=_chunks(data), headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, url, body=data, headers=hdrs)
            resp = conn.getresponse()
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            if isinstance(e, ConnectError):
                raise
            if isinstance(e.__cause__, ConnectError) or isinstance(e.__context__, ConnectError):
                raise e.__context__ from None  # type: ignore[misc]
            raise ConnectError(f"error during connect: {e}") from e
        if resp.status >= 400:
            raw = resp.read()
            try:
                msg = json.loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                msg = raw.decode(errors="replace").strip() or http.client.responses.get(resp.status, "")
            raise APIError(resp.status, msg)
        return resp

    def json(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        resp = self.request(method, path, params, body=body)
        raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def call(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> int:
        resp = self.request(method, path, params, body=body)
        resp.read()
        return resp.status

    def stream_json(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                    body: Any = None, headers: dict[str, str] | None = None) -> Iterator[dict]:
        """Yield each JSON message of a streamed response (progress, events, stats)."""
        resp = self.request(method, path, params, body=body, headers=headers, new_conn=True)
        buf = b""
        while True:
            chunk = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield json.loads(line)
        if buf.strip():
            yield json.loads(buf)

    def hijack(self, method: str, path: str, params: dict[str, Any] | None = None,
               body: Any = None) -> tuple[socket.socket, bytes]:
        """Send an upgrade request; returns the raw socket and any bytes read past the headers."""
        s = self._raw_socket()
        data = json.dumps(body).encode() if body is not None else b""
        req = (f"{method} {API_PREFIX}{path}{_q(params)} HTTP/1.1\r\nHost: hatoba\r\nUser-Agent: hatoba-cli\r\n"
               "Connection: Upgrade\r\nUpgrade: tcp\r\n"
               + ("Content-Type: application/json\r\n" if body is not None else "Content-Type: text/plain\r\n")
               + f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectError("daemon closed the connection during attach")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0].decode()
        status = int(status_line.split()[1])
        if status >= 400:
            body_bytes = rest
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v.strip())
            while len(body_bytes) < length:
                chunk = s.recv(65536)
                if not chunk:
                    break
                body_bytes += chunk
            s.close()
            try:
                msg = json.loads(body_bytes).get("message", "")
            except ValueError:
                msg = body_bytes.decode(errors="replace")
            raise APIError(status, msg)
        return s, rest

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _chunks(data: Any) -> Iterable[bytes]:
    if hasattr(data, "read"):
        while True:
            b = data.read(1 << 20)
            if not b:
                return
            yield b
    else:
        yield from data
