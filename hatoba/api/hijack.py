"""Hijacked connections (attach, exec start): after `101 UPGRADED` the socket carries raw bytes.

aiohttp closes a connection as soon as the client half-closes; Docker clients half-close
stdin and still expect output. So the handler writes the 101 itself and swaps the transport's
protocol for `Hijacked`, which keeps the write side open after the client's EOF.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from typing import Any

from aiohttp import web

from hatoba.api.common import HIJACKED
from hatoba.images import mediatypes

UPGRADED = (b"HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediatypes.RAW_STREAM.encode() + b"\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n")


class _Tail:
    """Collects what aiohttp already read past the request headers."""

    def __init__(self) -> None:
        self.data = b""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.data += data
        return False, b""

    def feed_eof(self) -> None:
        pass


class Hijacked(asyncio.Protocol):
    """A raw duplex stream over the request's transport (implements engine.attach.ClientStream)."""

    def __init__(self, transport: asyncio.Transport, old: Any, initial: bytes):
        loop = asyncio.get_running_loop()
        self.transport = transport
        self._old = old
        self._buf = bytearray(initial)
        self._eof = False
        self._readable = asyncio.Event()
        if initial:
            self._readable.set()
        self.lost: asyncio.Future = loop.create_future()
        self._drain_waiter: asyncio.Future | None = None
        self._paused = False

    # asyncio.Protocol
    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._readable.set()

    def eof_received(self) -> bool:
        self._eof = True
        self._readable.set()
        return True  # keep our write side open

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._readable.set()
        if not self.lost.done():
            self.lost.set_result(None)
        if self._drain_waiter and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        try:
            self._old.connection_lost(exc)
        except Exception:  # noqa: BLE001 - aiohttp's bookkeeping only
            pass

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._drain_waiter and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    # ClientStream
    def write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        if self._paused and not self.lost.done():
            self._drain_waiter = asyncio.get_running_loop().create_future()
            await self._drain_waiter

    async def read(self) -> bytes:
        while not self._buf and not self._eof:
            self._readable.clear()
            await self._readable.wait()
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            return data
        return b""

    def close(self) -> None:
        if not self.transport.is_closing():
            if self.transport.can_write_eof():
                try:
                    self.transport.write_eof()
                except OSError:
                    pass
            self.transport.close()


def _unread(sock: socket.socket) -> int:
    """Bytes written to a unix stream socket that the peer has not read yet (SIOCOUTQ)."""
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except OSError:
        return 0


async def _head_read(conn: Hijacked, timeout: float) -> None:
    sock = conn.transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while _unread(sock) and loop.time() < deadline and not conn.lost.done():
        await asyncio.sleep(0.0005)


async def upgrade(request: web.Request, extra_headers: bytes = b"", *, head_read_timeout: float = 0.05) -> Hijacked:
    """`hijack`, then wait (briefly) until a local client has read the 101 head.

    docker-py reads the head through a buffered file and then the raw socket: stream bytes that
    arrive in the same read as the head are lost to it. Over a unix socket the kernel tells when
    the head was read, so the first stream bytes never share a read with it."""
    conn = hijack(request, extra_headers)
    await _head_read(conn, head_read_timeout)
    return conn


def hijack(request: web.Request, extra_headers: bytes = b"") -> Hijacked:
    """Answer 101 and take the connection over; the handler must then `await finish(conn)`."""
    proto = request.protocol
    tail = _Tail()
    proto.set_parser(tail)  # type: ignore[arg-type]
    transport = request.transport
    assert transport is not None
    head = UPGRADED if not extra_headers else UPGRADED[:-2] + extra_headers + b"\r\n"
    transport.write(head)
    conn = Hijacked(transport, proto, tail.data)  # type: ignore[arg-type]
    transport.set_protocol(conn)
    request[HIJACKED] = conn
    return conn


async def finish(conn: Hijacked) -> web.StreamResponse:
    """Wait for the session to end, then let aiohttp unwind without writing anything."""
    conn.close()
    await conn.lost
    return web.Response()  # its write fails on the closed transport; aiohttp treats that as a disconnect
