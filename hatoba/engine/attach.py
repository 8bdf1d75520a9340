"""Attach sessions: pump bytes between a client stream and a conmon attach socket.

conmon sends packets of 1 stream byte (2 stdout, 3 stderr) + data and takes raw stdin bytes;
shutdown(SHUT_WR) closes the container's stdin. Clients get Docker's 8-byte frames when the
container has no TTY, raw bytes when it has one. A session may be created before the container
starts: client input is buffered until the socket is connected.

Detach keys (default ctrl-p,ctrl-q) are watched in the client's input as dockerd's escape proxy
does: bytes that could start the sequence are held back, a full match ends the session (the
container keeps running), a mismatch lets the held bytes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from hatoba.errors import InvalidParameter
from hatoba.runtime.conmon import OCIRuntimeError
from hatoba.runtime.logs import frame

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager


class ClientStream(Protocol):
    """The API's hijacked connection, as the engine sees it."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def read(self) -> bytes: ...        # b"" once the client half-closed or went away
    def close(self) -> None: ...
    @property
    def lost(self) -> asyncio.Future: ...     # resolves when the connection is gone


STREAM_NAMES = {2: "stdout", 3: "stderr"}
DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p, ctrl-q

_CTRL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str | None) -> bytes:
    """Docker's detach-keys syntax (`ctrl-p,ctrl-q`, `a,ctrl-@`) → the byte sequence."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    out = bytearray()
    for key in spec.split(","):
        k = key.strip()
        if len(k) == 1:
            out.append(ord(k) & 0xFF)
            continue
        if k.lower().startswith("ctrl-") and len(k) == 6:
            ch = k[5].lower()
            if "a" <= ch <= "z":
                out.append(ord(ch) - ord("a") + 1)
                continue
            if ch in _CTRL:
                out.append(_CTRL[ch])
                continue
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class EscapeProxy:
    """Finds the detach sequence in a stream of input chunks (dockerd's term.EscapeProxy)."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to pass on, detach?) for the next chunk of input."""
        if not self.keys:
            return data, False
        out = bytearray()
        buf = self.held + data
        self.held = b""
        i = 0
        n = len(buf)
        first = self.keys[0]
        while i < n:
            j = buf.find(first, i)
            if j < 0:
                out += buf[i:]
                break
            out += buf[i:j]
            m = 0
            while m < len(self.keys) and j + m < n and buf[j + m] == self.keys[m]:
                m += 1
            if m == len(self.keys):
                return bytes(out), True
            if j + m == n:  # the input ends inside a possible sequence: hold it
                self.held = buf[j:]
                break
            out += buf[j:j + 1]
            i = j + 1
        return bytes(out), False


class AttachSession:
    def __init__(self, client: ClientStream, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
                 stdin_once: bool, detach_keys: bytes | None = None, close_client: bool = True):
        self.client = client
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_once = stdin_once
        self.escape = EscapeProxy(detach_keys) if detach_keys else None
        self.close_client = close_client
        self.detached = False
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._sock: socket.socket | None = None

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self, sock: socket.socket) -> None:
        self._sock = sock
        asyncio.ensure_future(self._run(sock))

    def fail(self) -> None:
        self.client.close()
        if not self.done.done():
            self.done.set_result(None)

    async def _run(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        out = asyncio.ensure_future(self._pump_out(loop, sock))
        inp = asyncio.ensure_future(self._pump_in(loop, sock)) if self.stdin else None
        lost = self.client.lost
        waits = [out, lost] + ([inp] if inp else [])
        try:
            while True:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if out in done or lost in done:
                    break
                if inp in done:
                    waits.remove(inp)
                    if inp.result() == "detach":
                        break
        finally:
            for t in (out, inp):
                if t and not t.done():
                    t.cancel()
            with contextlib.suppress(OSError):
                sock.close()
            if self.close_client:
                self.client.close()
            if not self.done.done():
                self.done.set_result(None)

    async def _pump_out(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        while True:
            try:
                data = await loop.sock_recv(sock, 8193)
            except OSError:
                return
            if not data:
                return
            sid, payload = data[0], data[1:]
            name = STREAM_NAMES.get(sid)
            if name is None or not payload:
                continue
            if (name == "stdout" and not self.stdout) or (name == "stderr" and not self.stderr):
                continue
            self.client.write(payload if self.tty else frame(name, payload))
            await self.client.drain()

    async def _pump_in(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> str:
        while True:
            data = await self.client.read()
            if not data:
                if self.stdin_once:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)
                    return "eof"
                return "detach"
            if self.escape is not None:
                data, detach = self.escape.feed(data)
                if detach:
                    if data:
                        with contextlib.suppress(OSError):
                            await loop.sock_sendall(sock, data)
                    self.detached = True
                    return "detach"
            if not data:
                continue
            try:
                await loop.sock_sendall(sock, data)
            except OSError:
                return "eof"


async def attach(mgr: Manager, c: Container, upgrade: Callable[[], Awaitable[ClientStream]], *, stdin: bool,
                 stdout: bool, stderr: bool, stream: bool, logs: bool, detach_keys: str | None) -> ClientStream:
    """`POST /containers/{id}/attach`: validate, upgrade the connection, replay the log, pump streams.

    Returns the client stream once the session is over (the API then closes it)."""
    keys = parse_detach_keys(detach_keys)
    if logs:
        from hatoba.engine import logs as logs_mod

        logs_mod.readable(c)
    conn = await upgrade()
    mgr.events.emit("container", "attach", c.id, c.event_attrs())
    if logs:
        from hatoba.engine import logs as logs_mod

        recs, _ = logs_mod.snapshot(mgr, c, logs_mod.LogOptions(stdout=stdout, stderr=stderr))
        if recs:
            conn.write(b"".join(r.data if c.tty else frame(r.stream, r.data) for r in recs))
    if not stream:
        return conn
    sess = AttachSession(conn, tty=c.tty, stdin=stdin and bool(c.config.get("OpenStdin")), stdout=stdout,
                         stderr=stderr, stdin_once=bool(c.config.get("StdinOnce")), detach_keys=keys)
    if c.running:
        try:
            sock = await mgr.rt(c).open_attach(mgr.bundle(c))
        except (OSError, OCIRuntimeError):
            return conn
        sess.connect(sock)
    else:
        c.pending_attach.append(sess)
    await asyncio.wait([sess.done, conn.lost], return_when=asyncio.FIRST_COMPLETED)
    if sess in c.pending_attach:
        c.pending_attach.remove(sess)
    if sess.connected and not sess.done.done():
        await sess.done  # the client went away: the session closes the conmon socket and ends
    if sess.detached:
        mgr.events.emit("container", "detach", c.id, c.event_attrs())
    return conn
