"""A small Engine API client on the standard library: HTTP/1.1 over a unix socket or TCP (raw sockets;
http.client would pull in the email package and cost ~25 ms of start-up).

Used by every CLI command. It imports nothing heavy, so `hatoba ps` starts fast: a unix socket is
the C `_socket` module's (the `socket` module builds enums at import, several ms), JSON goes
through :mod:`hatoba.client.fastjson`, and `urllib.parse` is imported only for a TCP host or a
query value that needs escaping. Paths are sent with the `/v1.41` prefix, without a `_ping`
round trip first.
"""

from __future__ import annotations

import _socket
import posix
import sys

from hatoba.client.fastjson import dumps, loads

TYPE_CHECKING = False  # `typing` costs 3 to 6 ms of CLI start-up; Any is only used in annotations
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from socket import socket
    from typing import Any

DEFAULT_HOST = "unix:///run/hatoba/hatoba.sock"
API_PREFIX = "/v1.41"
_REASONS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


class APIError(Exception):
    """An error answer from the daemon: its status and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ConnectError(Exception):
    pass


def getenv(name: str) -> str | None:
    """`os.environ.get(name)`, without importing `os` (1 to 2 ms of start-up: os.environ is a
    MutableMapping) when nothing has: the environment can only have changed through os.environ."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name)
    v = posix.environ.get(name.encode())
    return None if v is None else v.decode(sys.getfilesystemencoding(), "surrogateescape")


def resolve_host(host: str | None = None) -> str:
    return host or getenv("HATOBA_HOST") or getenv("DOCKER_HOST") or DEFAULT_HOST


class Response:
    """An HTTP/1.1 response read straight off the socket: Content-Length, chunked, or until close."""

    def __init__(self, sock: socket, buf: bytes, method: str):
        self._sock = sock
        self._buf = bytearray(buf)
        head = self._read_head()
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        cl = self.headers.get("content-length")
        self._remaining: int | None = int(cl) if cl is not None and not self._chunked else None
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._remaining = 0
            self._chunked = False
        self._chunk_left = 0
        self._done = self._remaining == 0
        self.will_close = self.headers.get("connection", "").lower() == "close" or (
            self._remaining is None and not self._chunked)

    def _fill(self) -> bool:
        data = self._sock.recv(262144)
        if not data:
            return False
        self._buf += data
        return True

    def _read_head(self) -> bytes:
        while True:
            i = self._buf.find(b"\r\n\r\n")
            if i >= 0:
                head = bytes(self._buf[:i])
                del self._buf[:i + 4]
                return head
            if not self._fill():
                raise ConnectError("the daemon closed the connection")

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def _line(self) -> bytes:
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 2]
                return line
            if not self._fill():
                raise ConnectError("truncated chunked response")

    def read1(self, n: int = 65536) -> bytes:
        """Up to n bytes as soon as some are there; b"" at the end of the body."""
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                size = int(self._line().split(b";")[0] or b"0", 16)
                if size == 0:
                    while self._line():
                        pass
                    self._done = True
                    return b""
                self._chunk_left = size
            if not self._buf and not self._fill():
                self._done = True
                return b""
            take = min(n, self._chunk_left, len(self._buf))
            out = bytes(self._buf[:take])
            del self._buf[:take]
            self._chunk_left -= take
            if self._chunk_left == 0:
                self._line()
            return out
        if not self._buf and not self._fill():
            self._done = True
            return b""
        take = min(n, len(self._buf)) if self._remaining is None else min(n, len(self._buf), self._remaining)
        out = bytes(self._buf[:take])
        del self._buf[:take]
        if self._remaining is not None:
            self._remaining -= take
            if self._remaining == 0:
                self._done = True
        return out

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            chunk = self.read1(65536 if n < 0 else n - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    @property
    def done(self) -> bool:
        return self._done


# characters urlencode/quote leave as they are (plus "/:@" in quote_ref)
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_SAFE_REF = _SAFE | frozenset("/:@")


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
    if not items:
        return ""
    if all(_SAFE.issuperset(k) and _SAFE.issuperset(v) for k, v in items):
        return "?" + "&".join(f"{k}={v}" for k, v in items)
    from urllib.parse import urlencode

    return "?" + urlencode(items)


def quote_ref(ref: str) -> str:
    """Escape a name for a path segment but keep `/` and `:` raw, as the docker CLI does."""
    if _SAFE_REF.issuperset(ref):
        return ref
    from urllib.parse import quote

    return quote(ref, safe="/:@")


class Client:
    def __init__(self, host: str | None = None, timeout: float | None = None):
        self.host = resolve_host(host)
        self.timeout = timeout
        self._netloc = ("127.0.0.1", 2375)
        if self.host.startswith("unix:///"):
            self._scheme, self._path = "unix", self.host[7:]
        else:
            from urllib.parse import urlparse

            u = urlparse(self.host)
            self._scheme = u.scheme or "unix"
            self._path = u.path if self._scheme == "unix" else ""
            self._netloc = (u.hostname or "127.0.0.1", u.port or 2375)
        self._sock: socket | None = None
        self._last: Response | None = None

    # ---- plumbing ---------------------------------------------------------------------------------

    def _tls(self):  # type: ignore[no-untyped-def]
        """An SSL context when TLS is asked for (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or https://)."""
        verify = getenv("HATOBA_TLS_VERIFY") or getenv("DOCKER_TLS_VERIFY")
        if self._scheme != "https" and not verify and not getenv("HATOBA_HOST_TLS"):
            return None
        import os
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

    def _raw_socket(self) -> socket:
        if self._scheme == "unix":
            s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            if self.timeout:
                s.settimeout(self.timeout)
            try:
                s.connect(self._path)
            except OSError as e:
                s.close()
                raise ConnectError(f"Cannot connect to the hatoba daemon at {self.host}. "
                                   "Is the hatoba daemon running?") from e
            return s
        if self._scheme not in ("tcp", "http", "https"):
            raise ConnectError(f"unsupported host: {self.host}")
        import socket

        try:
            s = socket.create_connection(self._netloc, timeout=self.timeout)
            ctx = self._tls()
            return ctx.wrap_socket(s, server_hostname=self._netloc[0]) if ctx is not None else s
        except OSError as e:
            raise ConnectError(f"Cannot connect to the hatoba daemon at {self.host}. "
                               "Is the hatoba daemon running?") from e

    def _send(self, sock: socket, method: str, url: str, hdrs: dict[str, str], data: Any) -> None:
        head = f"{method} {url} HTTP/1.1\r\nHost: hatoba\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        if data is None:
            if method in ("POST", "PUT"):
                head += "Content-Length: 0\r\n"
            sock.sendall((head + "\r\n").encode())
        elif isinstance(data, bytes):
            sock.sendall((head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
        else:
            sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            for chunk in _chunks(data):
                if chunk:
                    sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sock.sendall(b"0\r\n\r\n")

    def request(self, method: str, path: str, params: dict[str, Any] | None = None, *, body: Any = None,
                headers: dict[str, str] | None = None, new_conn: bool = False) -> Response:
        """Send a request; returns the response (raising APIError on an error status)."""
        hdrs = {"User-Agent": "hatoba-cli"}
        if headers:
            hdrs.update(headers)
        data: Any = None
        if isinstance(body, (dict, list)):
            data = dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif body is not None:
            data = body  # iterable of bytes or file: sent chunked
            hdrs.setdefault("Content-Type", "application/x-tar")
        url = API_PREFIX + path + _q(params)
        reuse = (not new_conn and self._sock is not None and self._last is not None and self._last.done
                 and not self._last.will_close)
        sock = self._sock if reuse else self._raw_socket()
        assert sock is not None
        try:
            self._send(sock, method, url, hdrs, data)
            resp = Response(sock, b"", method)
        except OSError as e:
            raise ConnectError(f"error during connect: {e}") from e
        if not new_conn:
            if self._sock is not None and self._sock is not sock:
                self._sock.close()
            self._sock, self._last = sock, resp
        if resp.status >= 400:
            raw = resp.read()
            try:
                msg = loads(raw).get("message", raw.decode(errors="replace"))
            except ValueError:
                msg = raw.decode(errors="replace").strip() or _REASONS.get(resp.status, "")
            raise APIError(resp.status, msg)
        return resp

    def json(self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        resp = self.request(method, path, params, body=body)
        raw = resp.read()
        return loads(raw) if raw.strip() else None

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
                    yield loads(line)
        if buf.strip():
            yield loads(buf)

    def hijack(self, method: str, path: str, params: dict[str, Any] | None = None,
               body: Any = None) -> tuple[socket, bytes]:
        """Send an upgrade request; returns the raw socket and any bytes read past the headers."""
        s = self._raw_socket()
        data = dumps(body).encode() if body is not None else b""
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
                msg = loads(body_bytes).get("message", "")
            except ValueError:
                msg = body_bytes.decode(errors="replace")
            raise APIError(status, msg)
        return s, rest

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _chunks(data: Any) -> Iterable[bytes]:
    if hasattr(data, "read"):
        while True:
            b = data.read(1 << 20)
            if not b:
                return
            yield b
    else:
        yield from data
