"""An attached, non-TTY ``exec`` without a conmon: ``runc exec`` in the foreground, as our own child.

A conmon per exec costs 10 to 20 ms of every ``docker exec`` (its spawn, double fork and three pipe
hand-shakes before ``runc exec --detach`` even starts).  When the caller reads the session's output
for its whole life and no TTY is involved, runc can do that job itself: in the foreground it waits
for the process and forwards its stdio through pipes.  Two runc habits need care:

* runc exits only when *every* holder of the process's stdout/stderr has closed it, so a command
  that leaves a background child (``sh -c 'daemon &'``) would keep the session open as long as
  that child lives.  With ``--debug``, runc logs ``process exited`` with the pid and the exit status
  (``128+signal`` if killed) as soon as the process is reaped.  The log goes to a pipe of ours
  (``--log /proc/self/fd/N``: never a file, whose ``O_SYNC`` writes would cost ~10 ms on a disk),
  so the status is known at once; like dockerd, the output is then waited for at most
  :data:`IO_GRACE` seconds before the session ends (and runc, which then has nothing left to do,
  is killed).
* runc writes ``--pid-file`` once the process runs (after a successful ``execve``); nothing
  signals that, so the file is polled, but only after runc's ``setns_init: about to exec`` log
  line, i.e. for a millisecond or two.  If runc exits without it, the exec failed and the error
  lines of the log say why.

The session socket speaks conmon's attach protocol (packets of a stream byte, 2 stdout or 3
stderr, and up to 8192 bytes; raw stdin the other way; ``shutdown(SHUT_WR)`` closes stdin), so
the engine's attach sessions work on it unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess

__all__ = ["IO_GRACE", "DirectExec", "RuncExecFailed", "start"]

IO_GRACE = 2.0  # seconds of output still relayed after the process exited (dockerd waits as long)
_PACKET = 8192


class RuncExecFailed(Exception):
    """runc could not start the process; ``log`` is runc's JSON log (its error lines say why)."""

    def __init__(self, log: bytes, returncode: int | None) -> None:
        super().__init__(f"runc exec failed with exit status {returncode}")
        self.log = log
        self.returncode = returncode


class DirectExec:
    """A running direct exec: the process's host ``pid``, the session end of the attach socket,
    and ``exit``, which resolves to its exit status once its output has been relayed."""

    def __init__(self, pid: int, sock: socket.socket, exit: asyncio.Future[int]) -> None:
        self.pid, self.sock, self.exit = pid, sock, exit


class _RuncLog:
    """Reads runc's ``--debug`` JSON log from a pipe, keeping only what matters here."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop, self.fd = loop, fd
        self.raw = bytearray()  # the log so far, for error messages (capped)
        self._buf = b""
        self.about_to_exec = loop.create_future()
        self.exits: dict[int, int] = {}  # pid -> status, from "process exited"
        self.exited = loop.create_future()  # the first "process exited" (see watch_pid)
        self.pid = 0
        self.eof = loop.create_future()
        loop.add_reader(fd, self._read)

    def drain(self) -> None:
        """Read what runc wrote (it has exited: nothing more comes, an empty pipe is the end)."""
        while self.fd >= 0:
            self._read(draining=True)

    def _read(self, draining: bool = False) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            if not draining:
                return
            data = b""
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        if len(self.raw) < 1 << 16:
            self.raw += data
        lines = (self._buf + data).split(b"\n")
        self._buf = lines.pop()
        for line in lines:
            if b'"msg":"process exited"' in line:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    rec = json.loads(line)
                    self.exits[int(rec["pid"])] = int(rec["status"])
                    self._check_exit()
            elif b"about to exec" in line and not self.about_to_exec.done():
                self.about_to_exec.set_result(None)

    def watch_pid(self, pid: int) -> None:
        self.pid = pid
        self._check_exit()

    def _check_exit(self) -> None:
        if self.pid and self.pid in self.exits and not self.exited.done():
            self.exited.set_result(self.exits[self.pid])

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        for fut in (self.eof, self.about_to_exec):
            if not fut.done():
                fut.set_result(None)


def _pidfd_future(loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """Resolves to ``proc``'s exit status once it has exited (reaped; pidfd, no thread)."""
    fut: asyncio.Future[int] = loop.create_future()
    pidfd = os.pidfd_open(proc.pid)

    def ready() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not fut.done():
            fut.set_result(proc.wait())

    loop.add_reader(pidfd, ready)
    return fut


async def start(runc: str, root: str, env_path: str, cid: str, exec_dir: str, spec: str, *,
                stdin: bool) -> DirectExec:
    """Start ``spec`` (a process.json) in container ``cid``; returns once it runs (its pid known).

    Raises :class:`RuncExecFailed` if runc could not start it.  ``exec_dir`` gets the pid file.
    """
    loop = asyncio.get_running_loop()
    pidfile = os.path.join(exec_dir, "pidfile")
    fds: list[int] = []  # ours, closed on failure
    child: list[int] = []  # runc's ends, closed once it runs
    try:
        out_r, out_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        err_r, err_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        log_r, log_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        fds += [out_r, err_r, log_r]
        child += [out_w, err_w, log_w]
        in_r = in_w = -1
        if stdin:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(in_w, False)
            fds.append(in_w)
            child.append(in_r)
        for fd in (out_w, err_w, log_w):
            os.set_blocking(fd, True)  # the process's ends block, ours do not
        proc = subprocess.Popen(
            [runc, "--root", root, "--debug", "--log", f"/proc/self/fd/{log_w}", "--log-format", "json",
             "exec", "--process", spec, "--pid-file", pidfile, cid],
            stdin=in_r if stdin else subprocess.DEVNULL, stdout=out_w, stderr=err_w, pass_fds=(log_w,),
            cwd=exec_dir, env={"PATH": env_path}, close_fds=True,
        )  # fmt: skip
    except BaseException:
        for fd in fds + child:
            os.close(fd)
        raise
    for fd in child:
        os.close(fd)
    log = _RuncLog(loop, log_r)
    runc_exit = _pidfd_future(loop, proc)
    # started: runc wrote the pid file (after the execve); failed: runc exited without it.  Wait for
    # runc's "about to exec" (checking every 5 ms, in case it never says so), then poll finely.
    while not (log.about_to_exec.done() or runc_exit.done() or os.path.exists(pidfile)):
        await asyncio.wait((runc_exit, log.about_to_exec), timeout=0.005, return_when=asyncio.FIRST_COMPLETED)
    while not (runc_exit.done() or os.path.exists(pidfile)):
        await asyncio.sleep(0.0005)
    try:
        with open(pidfile, "rb") as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        rc = await runc_exit
        log.drain()
        log.close()
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        raise RuncExecFailed(bytes(log.raw), rc) from None
    log.watch_pid(pid)
    sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.setblocking(False)
    peer.setblocking(False)
    relay = _Relay(loop, peer, out_r, err_r, in_w, proc, runc_exit, log)
    return DirectExec(pid, sock, asyncio.ensure_future(relay.run()))


class _Relay:
    """stdout/stderr pipes -> attach packets on ``peer``, ``peer`` -> the stdin pipe."""

    def __init__(self, loop: asyncio.AbstractEventLoop, peer: socket.socket, out_fd: int, err_fd: int,
                 in_fd: int, proc: subprocess.Popen[bytes], runc_exit: asyncio.Future[int], log: _RuncLog) -> None:
        self.loop, self.peer, self.proc, self.runc_exit, self.log = loop, peer, proc, runc_exit, log
        self.out_fd, self.err_fd, self.in_fd = out_fd, err_fd, in_fd

    async def run(self) -> int:
        """Relay until the output is done; returns the exit status of the process."""
        outs = [asyncio.ensure_future(self._pump_out(self.out_fd, 2)),
                asyncio.ensure_future(self._pump_out(self.err_fd, 3))]
        pumps = asyncio.ensure_future(asyncio.wait(outs))  # done when both outputs ended
        feed = asyncio.ensure_future(self._pump_in()) if self.in_fd >= 0 else None
        linger = asyncio.ensure_future(self._linger())
        try:
            await asyncio.wait((pumps, linger), return_when=asyncio.FIRST_COMPLETED)
            if self.log.exited.done():
                return self.log.exited.result()
            return await self.runc_exit  # runc's status is the process's (or runc's own failure)
        finally:
            # plain tasks, each cancelled on its own (a cancelled gather logs "exception never retrieved")
            for t in (*outs, pumps, feed, linger):
                if t is not None and not t.done():
                    t.cancel()
            for fd in (self.out_fd, self.err_fd, self.in_fd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self.out_fd = self.err_fd = self.in_fd = -1
            self.peer.close()
            if not self.runc_exit.done():  # the process is gone: only holders of its stdio are left
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(signal.SIGKILL)
            self.runc_exit.add_done_callback(lambda _: self.log.close())

    async def _linger(self) -> None:
        """Done IO_GRACE seconds after the process exited, if its output has not ended by then."""
        await self.log.exited
        await asyncio.sleep(IO_GRACE)

    async def _ready(self, fd: int, write: bool = False) -> None:
        fut = self.loop.create_future()
        add, remove = (self.loop.add_writer, self.loop.remove_writer) if write else (
            self.loop.add_reader, self.loop.remove_reader)
        add(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            remove(fd)

    async def _pump_out(self, fd: int, stream: int) -> None:
        head = bytes([stream])
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                await self._ready(fd)
                continue
            if not data:
                return
            try:
                for i in range(0, len(data), _PACKET):
                    await self.loop.sock_sendall(self.peer, head + data[i:i + _PACKET])
            except OSError:
                continue  # the session is gone: keep draining, so that the process never blocks

    async def _pump_in(self) -> None:
        try:
            while data := await self.loop.sock_recv(self.peer, 65536):
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(self.in_fd, view):]
                    except BlockingIOError:  # a full pipe: the process is not reading yet
                        await self._ready(self.in_fd, write=True)
        except OSError:
            pass
        finally:  # the session closed stdin (or went away)
            if self.in_fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self.in_fd)
                self.in_fd = -1
