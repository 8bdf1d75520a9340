"""Driving conmon and runc: the only module of hatoba that spawns them.

One conmon 2.1.6 process monitors each container (and each ``exec`` session).  conmon runs
``runc create``, owns the container's stdio (k8s-file log, SEQPACKET attach socket, ctl fifo for
resize and log reopen), writes the exit code to ``<exit-dir>/<cid>`` and ``<persist-dir>/exit``
and survives a daemon restart because it double-forks away from us.  Everything else
(``start``, ``kill``, ``delete``, ``pause``, ``update``, ``state``, ``ps``) is a plain
``runc --root <root> --log-format json`` subcommand run with asyncio.

Protocol summary (see ``/work/shared/reference/notes/runtime-stack.md`` section 3):

* create: two ``socketpair(AF_UNIX, SOCK_SEQPACKET)`` (``_OCI_SYNCPIPE``, ``_OCI_STARTPIPE``);
  we write one byte to the start pipe, conmon's first process writes ``--conmon-pidfile`` and
  exits (we reap it), the daemonised conmon runs ``runc create`` and sends ``{"data": pid}`` or
  ``{"data": -1, "message": "<runc stderr>"}`` on the sync pipe.
* exec: a third pipe ``_OCI_ATTACHPIPE``: start byte, ``{"data": 0}`` on the attach pipe once
  ``<exec dir>/attach`` exists, connect, second start byte, then the sync pipe carries the pid
  and later the exit code.  An *attached* non-TTY exec skips conmon: ``runc exec`` runs in the
  foreground as the daemon's own child (:mod:`hatoba.runtime.runcexec`, ``attached=True``).
* attach socket: container→client packets are one stream byte (2 stdout, 3 stderr) plus up to
  8192 bytes; client→container packets are raw stdin; ``shutdown(SHUT_WR)`` closes stdin.

The daemon must not be a child subreaper: conmon is watched with pidfds (:meth:`Runtime.watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import re
import signal
import socket
import struct
import subprocess
import termios
from dataclasses import dataclass
from typing import Any

__all__ = ["Created", "ExecProcess", "OCIRuntimeError", "Runtime", "clean_runc_error"]

_SYNC_BUF = 1 << 17  # a sync message carries up to 8 KiB of runc stderr, JSON-escaped
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class OCIRuntimeError(Exception):
    """A runc (or conmon) failure; ``message`` is runc's error text without log noise."""

    def __init__(self, message: str, *, returncode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode

    @property
    def not_found(self) -> bool:
        """runc said the container does not exist."""
        return "does not exist" in self.message or "container not exists" in self.message

    @property
    def not_running(self) -> bool:
        """runc refused because the container is not running (e.g. kill of a stopped container)."""
        return "not running" in self.message or "process already finished" in self.message


@dataclass(slots=True)
class Created:
    """Result of :meth:`Runtime.create`: container init pid (host) and the conmon pid."""

    pid: int
    conmon_pid: int


# --------------------------------------------------------------------------- helpers

_LOGFMT_MSG = re.compile(r'\bmsg=("(?:[^"\\]|\\.)*"|\S+)')
_LOGFMT_LEVEL = re.compile(r"\blevel=(\w+)")
_ERROR_LEVELS = frozenset({"error", "fatal", "panic"})


def clean_runc_error(text: str | bytes) -> str:
    """Extract runc's error message(s) from its stderr (JSON or logfmt log lines, or plain text).

    ``time="…" level=error msg="runc create failed: unable to start container process: exec:
    \\"foo\\": executable file not found in $PATH"`` becomes ``runc create failed: unable to start
    container process: exec: "foo": executable file not found in $PATH``.  Error-level messages win
    over warnings; text that is not a log line is kept as is.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    errors: list[str] = []
    others: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        level: str | None = None
        msg: str | None = None
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict) and "msg" in obj:
                level = str(obj.get("level", "")) or None
                msg = str(obj["msg"])
        if msg is None:
            m = _LOGFMT_MSG.search(line)
            if m is not None and ("level=" in line or "time=" in line):
                val = m.group(1)
                if val.startswith('"'):
                    try:
                        msg = json.loads(val)
                    except ValueError:
                        msg = val[1:-1]
                else:
                    msg = val
                lm = _LOGFMT_LEVEL.search(line)
                level = lm.group(1) if lm else None
        if msg is None:
            others.append(line)
        elif level is None or level in _ERROR_LEVELS:
            errors.append(msg)
        else:
            others.append(msg)
    chosen = errors or others
    return "\n".join(dict.fromkeys(chosen)) if chosen else text.strip()


def _parse_sync(data: bytes) -> tuple[int, str | None]:
    """Parse one sync-pipe message ``{"data": N[, "message": "..."]}``."""
    try:
        obj = json.loads(data)
        value = int(obj["data"])
    except (ValueError, KeyError, TypeError) as e:
        raise OCIRuntimeError(f"conmon: malformed sync message {data[:200]!r}") from e
    msg = obj.get("message")
    return value, (str(msg) if msg is not None else None)


def _write_ctl(path: str, line: str) -> None:
    """Write one control line to a conmon ctl fifo; silently ignore a gone conmon."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENXIO, errno.ENOENT):
            return
        raise
    try:
        os.write(fd, line.encode())
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EPIPE):
            raise
    finally:
        os.close(fd)


def _fifo_pending(path: str) -> int:
    """Bytes written to a fifo that its reader has not read yet (0 if the fifo is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0
    finally:
        os.close(fd)


_ctl_locks: dict[str, tuple[asyncio.Lock, int]] = {}


async def _write_ctl_paced(directory: str, line: str, timeout: float = 0.5) -> None:
    """Write a ctl line, then wait (up to ``timeout``) until conmon has read it and its winsz relay.

    conmon 2.1.6 (fixed in 2.2.0) applies the *first* line of whatever one read() of its ctl or
    winsz fifo returns, once per line: two resizes that reach it back to back (docker attach
    sends h+1/w+1, then h/w) leave the stale first size.  One message in flight at a time avoids it.
    """
    lock, users = _ctl_locks.get(directory) or (asyncio.Lock(), 0)
    _ctl_locks[directory] = (lock, users + 1)
    try:
        async with lock:
            _write_ctl(os.path.join(directory, "ctl"), line)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            quiet = 0
            while quiet < 2 and loop.time() < deadline:  # empty twice: conmon's relay write is done too
                await asyncio.sleep(0.002)
                busy = _fifo_pending(os.path.join(directory, "ctl")) or _fifo_pending(
                    os.path.join(directory, "winsz")
                )
                quiet = 0 if busy else quiet + 1
    finally:
        lock, users = _ctl_locks[directory]
        if users <= 1:
            del _ctl_locks[directory]
        else:
            _ctl_locks[directory] = (lock, users - 1)


def _make_private(directory: str, spec: str) -> None:
    """A bundle's spec holds the container's environment: only root may read it."""
    os.chmod(directory, 0o700)
    with contextlib.suppress(FileNotFoundError):
        os.chmod(os.path.join(directory, spec), 0o600)


def _read_int(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            raw = f.read(64)
    except OSError:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _read_nonblocking(fd: int) -> bytes:
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


async def _connect_seqpacket(path: str, timeout: float = 5.0) -> socket.socket:
    """Connect to a SEQPACKET socket of any path length (``O_PATH`` + ``/proc/self/fd/N``)."""
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                sock.connect(f"/proc/self/fd/{fd}")
                break
            except BlockingIOError:  # listen backlog full (conmon not accepting yet)
                if loop.time() > deadline:
                    raise OCIRuntimeError(f"timed out connecting to {path}") from None
                await asyncio.sleep(0.005)
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(fd)
    return sock


def _seqpacket_pair() -> tuple[socket.socket, socket.socket]:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    parent.setblocking(False)
    return parent, child


async def _reap(proc: subprocess.Popen[bytes]) -> int:
    """Wait for a direct child without blocking the loop (pidfd) and reap it."""
    rc = proc.poll()
    if rc is not None:
        return rc
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(proc.pid)
    try:
        fut: asyncio.Future[None] = loop.create_future()

        def _ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(pidfd, _ready)
        try:
            await fut
        finally:
            loop.remove_reader(pidfd)
    finally:
        os.close(pidfd)
    return proc.wait()


def _kill_pid(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


# --------------------------------------------------------------------------- exec session


class ExecProcess:
    """A running ``exec`` session monitored by its own conmon."""

    def __init__(
        self,
        *,
        pid: int,
        conmon_pid: int,
        sock: socket.socket | None,
        sync: socket.socket | None,
        exec_dir: str,
        cid: str,
        exit: asyncio.Future[int] | None = None,
    ) -> None:
        self.pid = pid
        self.conmon_pid = conmon_pid  # 0: no conmon (a direct ``runc exec``, see Runtime.exec)
        self.sock = sock
        self.exec_dir = exec_dir
        self._cid = cid
        self._sync: socket.socket | None = sync
        self._exit: asyncio.Future[int] | None = exit

    async def _wait_exit(self) -> int:
        loop = asyncio.get_running_loop()
        data = b""
        if self._sync is not None:
            try:
                data = await loop.sock_recv(self._sync, _SYNC_BUF)
            finally:
                self._sync.close()
                self._sync = None
        if data:
            code, msg = _parse_sync(data)
            if msg and code < 0:
                raise OCIRuntimeError(clean_runc_error(msg))
            return code
        code2 = Runtime.read_exit_code(os.path.join(self.exec_dir, "exits"), self._cid)
        if code2 is None:
            raise OCIRuntimeError("conmon exited without reporting the exec exit code")
        return code2

    async def wait(self) -> int:
        """Exit code of the exec'd process (``128+signal`` if killed)."""
        if self._exit is None:
            self._exit = asyncio.ensure_future(self._wait_exit())
        return await asyncio.shield(self._exit)

    def resize(self, h: int, w: int) -> None:
        """Resize the exec session's TTY."""
        if self.conmon_pid:
            _write_ctl(os.path.join(self.exec_dir, "ctl"), f"1 {int(h)} {int(w)}\n")

    async def resize_async(self, h: int, w: int) -> None:
        """:meth:`resize`, one at a time, returning once conmon has taken it (see _write_ctl_paced)."""
        if self.conmon_pid:  # a direct exec has no TTY to resize
            await _write_ctl_paced(self.exec_dir, f"1 {int(h)} {int(w)}\n")

    def close(self) -> None:
        """Close the attach socket and the sync pipe (the process keeps running)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._sync is not None and self._exit is None:
            self._sync.close()
            self._sync = None


# --------------------------------------------------------------------------- runtime


class Runtime:
    """conmon + runc driver (asyncio)."""

    def __init__(
        self,
        *,
        runc: str = "/usr/sbin/runc",
        conmon: str = "/usr/bin/conmon",
        runc_root: str,
        log_level: str = "error",
    ) -> None:
        self.runc = runc
        self.conmon = conmon
        self.runc_root = runc_root
        self.log_level = log_level
        self._env_path = os.environ.get("PATH") or _DEFAULT_PATH

    # ----------------------------------------------------------------- conmon plumbing

    def _shared_args(
        self, cid: str, uuid: str, bundle: str, pidfile: str, exit_dir: str, log: str
    ) -> list[str]:
        return [
            self.conmon,
            "--api-version", "1",
            "-c", cid,
            "-u", uuid,
            "-r", self.runc,
            "-b", bundle,
            "-p", pidfile,
            "-n", cid,
            "--exit-dir", exit_dir,
            "--full-attach",
            "-l", log,
            "--log-level", self.log_level,
            "--runtime-arg", "--root",
            "--runtime-arg", self.runc_root,
            "--runtime-arg", "--log-format=json",
        ]  # fmt: skip

    def _spawn(
        self, argv: list[str], cwd: str, pipes: dict[str, socket.socket]
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Start conmon with the child ends of ``pipes``; returns (process, stderr read fd)."""
        env = {"PATH": self._env_path}
        for name, sock in pipes.items():
            env[name] = str(sock.fileno())
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            os.set_blocking(err_r, False)
            proc = subprocess.Popen(
                argv,
                pass_fds=tuple(s.fileno() for s in pipes.values()),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err_w,
                close_fds=True,
            )
        except OSError as e:
            os.close(err_r)
            raise OCIRuntimeError(f"cannot execute {argv[0]}: {e.strerror or e}") from e
        except BaseException:
            os.close(err_r)
            raise
        finally:
            os.close(err_w)
            for sock in pipes.values():
                sock.close()
        return proc, err_r

    async def _first_child(self, proc: subprocess.Popen[bytes], err_r: int, pidfile: str) -> int:
        """Reap conmon's first process and return the daemonised conmon's pid."""
        rc = await _reap(proc)
        if rc != 0:
            err = _read_nonblocking(err_r).decode("utf-8", "replace").strip()
            raise OCIRuntimeError(f"conmon failed (exit status {rc}): {err or 'no error output'}")
        pid = _read_int(pidfile)
        if pid is None:
            raise OCIRuntimeError(f"conmon did not write its pid file {pidfile}")
        return pid

    async def _reap_conmon(self, conmon_pid: int, timeout: float = 5.0) -> None:
        """After a reported failure conmon exits by itself; make sure it does."""
        fut = self.watch(conmon_pid)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            _kill_pid(conmon_pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.watch(conmon_pid), 1.0)

    # ----------------------------------------------------------------- create

    async def create(
        self,
        cid: str,
        bundle: str,
        *,
        tty: bool,
        stdin: bool,
        log_path: str,
        exit_dir: str,
        persist_dir: str,
        exit_command: list[str] | None = None,
        leave_stdin_open: bool = False,
        log_driver: str = "k8s-file",
    ) -> Created:
        """Run ``runc create`` under a new conmon; returns the container's init pid and conmon's pid.

        With ``stdin``, conmon closes the container's stdin when any attach client goes away, unless
        ``leave_stdin_open`` (then stdin outlives attach sessions and cannot be closed through them).

        Connect to the attach socket (:meth:`open_attach`) before :meth:`start` to see early output.
        Raises :class:`OCIRuntimeError` with runc's message if the container cannot be created;
        conmon is then gone and runc has nothing left for this id.  If this coroutine is cancelled
        after conmon was spawned, the container may still get created: ``delete(cid, force=True)``.
        """
        loop = asyncio.get_running_loop()
        bundle = os.path.abspath(bundle)
        _make_private(bundle, "config.json")
        for d in (exit_dir, persist_dir):
            os.makedirs(d, exist_ok=True)
        # Stale results of a previous run of the same container must not be mistaken for new ones.
        for stale in (
            os.path.join(exit_dir, cid),
            os.path.join(persist_dir, "exit"),
            os.path.join(persist_dir, "oom"),
            os.path.join(bundle, "oom"),
        ):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)
        conmon_pidfile = os.path.join(bundle, "conmon.pid")
        log_spec = "none" if log_driver == "none" else f"k8s-file:{log_path}"
        argv = self._shared_args(cid, cid, bundle, os.path.join(bundle, "pidfile"), exit_dir, log_spec)
        argv += ["--persist-dir", persist_dir, "--conmon-pidfile", conmon_pidfile]
        if tty:
            argv.append("-t")
        if stdin:
            argv.append("-i")
            if leave_stdin_open:
                argv.append("--leave-stdin-open")
        if exit_command:
            argv += ["--exit-command", exit_command[0]]
            for arg in exit_command[1:]:
                argv += ["--exit-command-arg", arg]

        sync_p, sync_c = _seqpacket_pair()
        start_p, start_c = _seqpacket_pair()
        err_r = -1
        try:
            proc, err_r = self._spawn(argv, bundle, {"_OCI_SYNCPIPE": sync_c, "_OCI_STARTPIPE": start_c})
            start_p.send(b"\0")
            start_p.close()
            conmon_pid = await self._first_child(proc, err_r, conmon_pidfile)
            data = await loop.sock_recv(sync_p, _SYNC_BUF)
            if not data:
                await self._reap_conmon(conmon_pid)
                err = _read_nonblocking(err_r).decode("utf-8", "replace").strip()
                raise OCIRuntimeError(
                    f"conmon exited before reporting the container pid{': ' + err if err else ''}"
                )
            pid, msg = _parse_sync(data)
            if pid <= 0:
                await self._reap_conmon(conmon_pid)
                with contextlib.suppress(OCIRuntimeError):
                    await self.delete(cid, force=True)
                raise OCIRuntimeError(clean_runc_error(msg or "") or "runc create failed")
            return Created(pid=pid, conmon_pid=conmon_pid)
        finally:
            sync_p.close()
            start_p.close()
            if err_r >= 0:
                os.close(err_r)

    # ----------------------------------------------------------------- runc subcommands

    async def _runc(self, *args: str, stdin_data: bytes | None = None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self.runc,
            "--root",
            self.runc_root,
            "--log-format",
            "json",
            *args,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin_data)
        if proc.returncode != 0:
            msg = clean_runc_error(err) or f"runc {args[0]} failed with exit status {proc.returncode}"
            raise OCIRuntimeError(msg, returncode=proc.returncode)
        return out

    async def start(self, cid: str) -> None:
        """``runc start``: run the user process of a created container."""
        await self._runc("start", cid)

    async def kill(self, cid: str, sig: int, all_procs: bool = False) -> None:
        """``runc kill [--all] cid sig``."""
        args = ["kill"]
        if all_procs:
            args.append("--all")
        await self._runc(*args, cid, str(int(sig)))

    async def delete(self, cid: str, force: bool = False) -> None:
        """``runc delete [--force]``; a container that does not exist is not an error."""
        args = ["delete"]
        if force:
            args.append("--force")
        try:
            await self._runc(*args, cid)
        except OCIRuntimeError as e:
            if not e.not_found:
                raise

    async def pause(self, cid: str) -> None:
        """``runc pause`` (cgroup freezer)."""
        await self._runc("pause", cid)

    async def resume(self, cid: str) -> None:
        """``runc resume``."""
        await self._runc("resume", cid)

    async def update(self, cid: str, resources: dict[str, Any]) -> None:
        """``runc update -r -`` with an OCI ``linux.resources`` object on stdin."""
        await self._runc("update", "-r", "-", cid, stdin_data=json.dumps(resources).encode())

    async def state(self, cid: str) -> dict[str, Any] | None:
        """``runc state`` as a dict, or ``None`` if runc does not know the container."""
        try:
            out = await self._runc("state", cid)
        except OCIRuntimeError as e:
            if e.not_found:
                return None
            raise
        return json.loads(out)

    async def ps(self, cid: str) -> list[int]:
        """Host pids of the container's processes (``runc ps --format json``)."""
        out = await self._runc("ps", "--format", "json", cid)
        pids = json.loads(out or b"null")
        return [int(p) for p in pids or []]

    # ----------------------------------------------------------------- stdio

    async def open_attach(self, bundle: str) -> socket.socket:
        """Connect to ``<bundle>/attach`` (non-blocking SEQPACKET socket for ``loop.sock_*``).

        Reads: ``loop.sock_recv(sock, 8193)``; byte 0 is the stream (2 stdout, 3 stderr), EOF means
        conmon closed the stream after the container exited.  Writes go to stdin raw;
        ``sock.shutdown(socket.SHUT_WR)`` closes the container's stdin (with ``stdin=True``).
        """
        return await _connect_seqpacket(os.path.join(bundle, "attach"))

    def resize(self, bundle: str, height: int, width: int) -> None:
        """Resize the container's TTY (no-op if conmon is gone)."""
        _write_ctl(os.path.join(bundle, "ctl"), f"1 {int(height)} {int(width)}\n")

    async def resize_async(self, bundle: str, height: int, width: int) -> None:
        """:meth:`resize`, one at a time, returning once conmon has taken it (see _write_ctl_paced)."""
        await _write_ctl_paced(os.path.abspath(bundle), f"1 {int(height)} {int(width)}\n")

    def reopen_log(self, bundle: str) -> None:
        """Ask conmon to reopen its log file (after :func:`hatoba.runtime.logs.rotate`)."""
        _write_ctl(os.path.join(bundle, "ctl"), "2 0 0\n")

    # ----------------------------------------------------------------- exec

    async def exec(
        self,
        cid: str,
        exec_dir: str,
        process: dict[str, Any],
        *,
        tty: bool,
        stdin: bool,
        attached: bool = False,
    ) -> ExecProcess:
        """Start an exec session (``runc exec --detach`` under its own conmon), attached from the start.

        ``exec_dir`` is the session's own directory (its basename is the session id); it gets
        ``process.json``, ``attach``, ``ctl``, ``pidfile``, ``conmon.pid`` and ``exits/<cid>``.
        Raises :class:`OCIRuntimeError` if runc cannot start the process.

        ``attached``: the caller reads ``sock`` for the whole session (not ``exec -d``).  Without a
        TTY, ``runc exec`` then runs in the foreground as our child, without a conmon (its spawn,
        double fork and three pipe hand-shakes cost 10 to 20 ms of every exec): see
        :mod:`hatoba.runtime.runcexec`.  ``sock`` speaks conmon's attach protocol either way.
        """
        exec_dir = os.path.abspath(exec_dir)
        os.makedirs(exec_dir, exist_ok=True)
        spec = os.path.join(exec_dir, "process.json")
        _make_private(exec_dir, "process.json")
        with open(spec, "w", opener=lambda p, fl: os.open(p, fl, 0o600)) as f:
            json.dump(process, f)
        if attached and not tty:
            from hatoba.runtime import runcexec

            try:
                d = await runcexec.start(self.runc, self.runc_root, self._env_path, cid, exec_dir, spec, stdin=stdin)
            except runcexec.RuncExecFailed as e:
                msg = clean_runc_error(e.log) or f"runc exec failed with exit status {e.returncode}"
                raise OCIRuntimeError(msg, returncode=e.returncode) from None
            return ExecProcess(pid=d.pid, conmon_pid=0, sock=d.sock, sync=None, exec_dir=exec_dir, cid=cid, exit=d.exit)
        loop = asyncio.get_running_loop()
        exits = os.path.join(exec_dir, "exits")
        os.makedirs(exits, exist_ok=True)
        session = os.path.basename(exec_dir.rstrip("/"))
        conmon_pidfile = os.path.join(exec_dir, "conmon.pid")
        argv = self._shared_args(cid, session, exec_dir, os.path.join(exec_dir, "pidfile"), exits, "none")
        argv += ["--conmon-pidfile", conmon_pidfile, "-e", "--exec-attach", "--exec-process-spec", spec]
        if tty:
            argv.append("-t")
        if stdin:
            argv.append("-i")

        sync_p, sync_c = _seqpacket_pair()
        start_p, start_c = _seqpacket_pair()
        attach_p, attach_c = _seqpacket_pair()
        err_r = -1
        sock: socket.socket | None = None
        handed_over = False
        try:
            proc, err_r = self._spawn(
                argv,
                exec_dir,
                {"_OCI_SYNCPIPE": sync_c, "_OCI_STARTPIPE": start_c, "_OCI_ATTACHPIPE": attach_c},
            )
            start_p.send(b"\0")
            conmon_pid = await self._first_child(proc, err_r, conmon_pidfile)
            data = await loop.sock_recv(attach_p, _SYNC_BUF)
            if not data:
                await self._reap_conmon(conmon_pid)
                raise OCIRuntimeError("conmon exited before the exec attach socket was ready")
            code, msg = _parse_sync(data)
            if code != 0:
                await self._reap_conmon(conmon_pid)
                raise OCIRuntimeError(clean_runc_error(msg or "") or f"conmon exec attach failed ({code})")
            sock = await _connect_seqpacket(os.path.join(exec_dir, "attach"))
            start_p.send(b"\0")
            data = await loop.sock_recv(sync_p, _SYNC_BUF)
            if not data:
                await self._reap_conmon(conmon_pid)
                raise OCIRuntimeError("conmon exited before reporting the exec pid")
            pid, msg = _parse_sync(data)
            if pid <= 0:
                await self._reap_conmon(conmon_pid)
                raise OCIRuntimeError(clean_runc_error(msg or "") or "runc exec failed")
            handed_over = True
            return ExecProcess(
                pid=pid, conmon_pid=conmon_pid, sock=sock, sync=sync_p, exec_dir=exec_dir, cid=cid
            )
        finally:
            start_p.close()
            attach_p.close()
            if err_r >= 0:
                os.close(err_r)
            if not handed_over:
                sync_p.close()
                if sock is not None:
                    sock.close()

    # ----------------------------------------------------------------- monitoring

    def watch(self, pid: int) -> asyncio.Future[None]:
        """Future resolved when process ``pid`` (any process, not only children) has exited."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            fut.set_result(None)
            return fut

        def _cleanup(_: asyncio.Future[None]) -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)

        def _ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(pidfd, _ready)
        fut.add_done_callback(_cleanup)
        return fut

    @staticmethod
    def conmon_alive(bundle: str) -> int | None:
        """pid of the conmon monitoring ``bundle`` if it still runs (checked via /proc cmdline)."""
        pid = _read_int(os.path.join(bundle, "conmon.pid"))
        if pid is None or pid <= 0:
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            return None
        if not args or b"conmon" not in os.path.basename(args[0]):
            return None
        want = os.fsencode(os.path.abspath(bundle))
        if want not in args and os.fsencode(os.path.realpath(bundle)) not in args:
            return None  # a conmon, but for another bundle (pid reuse)
        return pid

    @staticmethod
    def read_exit_code(exit_dir: str, cid: str) -> int | None:
        """Exit code conmon wrote to ``<exit_dir>/<cid>``, or ``None`` if not (yet) there."""
        return _read_int(os.path.join(exit_dir, cid))

    @staticmethod
    def oom_killed(persist_dir: str) -> bool:
        """True if conmon saw an OOM kill in the container's memory cgroup."""
        return os.path.exists(os.path.join(persist_dir, "oom"))
