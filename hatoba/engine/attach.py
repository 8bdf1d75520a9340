"""Attach sessions: pump bytes between a client stream and a conmon attach socket.

conmon sends packets of 1 stream byte (2 stdout, 3 stderr) + data and takes raw stdin bytes;
shutdown(SHUT_WR) closes the container's stdin. Clients get Docker's 8-byte frames when the
container has no TTY, raw bytes when it has one. A session may be created before the container
starts: client input is buffered until the socket is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Protocol

from hatoba.runtime.logs import frame


class ClientStream(Protocol):
    """The API's hijacked connection, as the engine sees it."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    async def read(self) -> bytes: ...        # b"" once the client half-closed or went away
    def close(self) -> None: ...
    @property
    def lost(self) -> asyncio.Future: ...     # resolves when the connection is gone


STREAM_NAMES = {2: "stdout", 3: "stderr"}


class AttachSession:
    def __init__(self, client: ClientStream, *, tty: bool, stdin: bool, stdout: bool, stderr: bool,
                 stdin_once: bool, detach_keys: bytes | None = None, close_client: bool = True):
        self.client = client
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.stdin_once = stdin_once
        self.detach_keys = detach_keys
        self.close_client = close_client
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
            try:
                await loop.sock_sendall(sock, data)
            except OSError:
                return "eof"
