"""Exec sessions (`docker exec`): create, start (attached or detached), inspect, resize.

The process runs with the exec's own settings (create's `Tty` decides whether it gets a terminal);
the start request's `Tty` only decides how the output is framed on the hijacked stream, as with
dockerd. Detach keys (default ctrl-p,ctrl-q) end an attached session without stopping the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from hatoba.engine.attach import AttachSession, ClientStream, parse_detach_keys
from hatoba.engine.container import Container
from hatoba.engine.containers import Containers
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound
from hatoba.runtime.conmon import ExecProcess, OCIRuntimeError
from hatoba.runtime.logs import frame
from hatoba.runtime.users import UserError, resolve_user


class Exec:
    def __init__(self, eid: str, container: Container, body: dict[str, Any]):
        self.id = eid
        self.container = container
        self.body = body
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.started = False
        self.proc: ExecProcess | None = None
        self.done = asyncio.get_running_loop().create_future()

    @property
    def cmd(self) -> list[str]:
        return list(self.body.get("Cmd") or [])

    @property
    def tty(self) -> bool:
        return bool(self.body.get("Tty"))

    def inspect(self) -> dict[str, Any]:
        b = self.body
        cmd = self.cmd
        user = b.get("User")
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(b.get("Privileged")),
                              **({"user": user} if user else {})},
            "OpenStdin": bool(b.get("AttachStdin")), "OpenStderr": bool(b.get("AttachStderr")),
            "OpenStdout": bool(b.get("AttachStdout")), "CanRemove": False,
            "ContainerID": self.container.id, "DetachKeys": b.get("DetachKeys") or "", "Pid": self.pid,
        }


class Captured(NamedTuple):
    """What `Execs.run_capture` collected from one process."""

    exit_code: int | None  # None when it ran out of time and was killed
    output: bytes          # stdout and stderr in arrival order, at most `limit` bytes
    truncated: bool        # output beyond `limit` was discarded
    timed_out: bool


def _event_cmd(cmd: list[str]) -> str:
    """dockerd's exec event text: entrypoint, a space, the arguments ("true " for a lone `true`)."""
    return cmd[0] + " " + " ".join(cmd[1:])


async def _collect(sock: socket.socket, limit: int) -> tuple[bytearray, bool]:
    """Read a conmon attach socket to its end: stdout and stderr payloads, the first `limit` bytes kept."""
    loop = asyncio.get_running_loop()
    buf, truncated = bytearray(), False
    while True:
        try:
            data = await loop.sock_recv(sock, 8193)
        except OSError:
            break
        if not data:
            break
        if data[0] not in (2, 3):
            continue
        room = limit - len(buf)
        if len(data) - 1 > room:
            truncated = True
        if room > 0:
            buf += data[1:1 + room]
    return buf, truncated


def _kill_group(pid: int, pidfd: int) -> None:
    """SIGKILL an exec'd process and its process group (runc makes it a session leader), while the
    pidfd says the process is still the one we started."""
    if pidfd < 0:
        return
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)


class Execs:
    def __init__(self, containers: Containers):
        self.containers = containers
        self.by_id: dict[str, Exec] = {}

    def get(self, eid: str) -> Exec:
        e = self.by_id.get(eid)
        if e is None:
            raise NotFound(f"No such exec instance: {eid}")
        return e

    def inspect(self, eid: str) -> dict[str, Any]:
        return self.get(eid).inspect()

    def create(self, ref: str, body: dict[str, Any]) -> str:
        c = self.containers.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.paused:
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        cmd = body.get("Cmd")
        if not cmd:
            raise InvalidParameter("No exec command specified")
        parse_detach_keys(body.get("DetachKeys"))
        eid = os.urandom(32).hex()
        self.by_id[eid] = Exec(eid, c, body)
        c.exec_ids.add(eid)
        self.containers.events.emit("container", f"exec_create: {_event_cmd(cmd)}", c.id, c.event_attrs(execID=eid))
        return eid

    def _process(self, e: Exec) -> dict[str, Any]:
        c = e.container
        with open(os.path.join(self.containers.bundle(c), "config.json")) as f:
            spec = json.load(f)
        proc = dict(spec["process"])
        b = e.body
        proc["args"] = e.cmd
        proc["terminal"] = e.tty
        env = list(proc.get("env") or [])
        for kv in b.get("Env") or []:
            k = kv.split("=", 1)[0]
            env = [x for x in env if x.split("=", 1)[0] != k] + [kv]
        proc["env"] = env
        if b.get("WorkingDir"):
            proc["cwd"] = b.get("WorkingDir")
        if b.get("User"):
            try:
                u = resolve_user(spec["root"]["path"], b.get("User"))
            except UserError as err:
                raise HatobaError(str(err)) from None
            proc["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}
        proc.pop("consoleSize", None)
        return proc

    async def start(self, eid: str, *, detach: bool, tty: bool | None,
                    upgrade: Callable[[], Awaitable[ClientStream]] | None = None) -> ClientStream | None:
        """Start the exec; attached (`upgrade` gives the hijacked client stream) unless `detach`.

        Errors before the upgrade are HTTP errors; later ones are written into the stream."""
        e = self.get(eid)
        if e.started:
            raise Conflict(f"Error: Exec command {eid} has already run")
        c = e.container
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        client = None
        if not detach:
            if upgrade is None:
                raise InvalidParameter("an attached exec start needs a stream")
            client = await upgrade()
        framed = not (e.tty if tty is None else tty)
        e.started = True
        exec_dir = os.path.join(self.containers.bundle(c), "exec", eid[:16])
        os.makedirs(exec_dir, mode=0o700, exist_ok=True)
        b = e.body
        stdin = bool(b.get("AttachStdin")) and not detach
        try:
            proc = await self.containers.rt(c).exec(c.id, exec_dir, self._process(e), tty=e.tty, stdin=stdin,
                                                    attached=client is not None)
        except (OCIRuntimeError, HatobaError, OSError) as err:
            msg_text = err.message if isinstance(err, (OCIRuntimeError, HatobaError)) else str(err)
            e.exit_code = 126 if "permission denied" in msg_text else 127
            shutil.rmtree(exec_dir, ignore_errors=True)
            if not e.done.done():
                e.done.set_result(None)
            text = f"OCI runtime exec failed: {msg_text}: unknown"
            if client is not None:
                msg = (text + "\r\n").encode()
                client.write(frame("stdout", msg) if framed else msg)  # dockerd frames it as stdout
                return client
            raise HatobaError(text) from None
        e.proc, e.pid, e.running = proc, proc.pid, True
        self.containers.events.emit("container", f"exec_start: {_event_cmd(e.cmd)}", c.id,
                                    c.event_attrs(execID=eid))
        asyncio.ensure_future(self._reap(e, exec_dir))
        if client is None or proc.sock is None:
            return client
        session = AttachSession(client, tty=not framed, stdin=stdin,
                                stdout=bool(b.get("AttachStdout", True)), stderr=bool(b.get("AttachStderr", True)),
                                stdin_once=True, close_client=False,
                                detach_keys=parse_detach_keys(b.get("DetachKeys")))
        session.connect(proc.sock)
        await session.done
        if not session.detached:
            await asyncio.wait([e.done, client.lost], return_when=asyncio.FIRST_COMPLETED)
        return client  # closed by the API only now: the CLI reads ExitCode right after the stream ends

    async def _reap(self, e: Exec, exec_dir: str) -> None:
        assert e.proc is not None
        try:
            code = await e.proc.wait()
        except Exception:  # noqa: BLE001 - conmon gone; report a failure code
            code = 126
        e.exit_code, e.running = code, False
        c = e.container
        self.containers.events.emit("container", "exec_die", c.id, c.event_attrs(execID=e.id, exitCode=code))
        if not e.done.done():
            e.done.set_result(None)
        shutil.rmtree(exec_dir, ignore_errors=True)

    async def resize(self, eid: str, h: int, w: int) -> None:
        e = self.get(eid)
        # like dockerd, wait (up to 10 s) for the exec to start: the CLI resizes right after /start
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while e.proc is None and e.exit_code is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if e.proc is None:
            raise Conflict(f"Exec {eid} is not running")
        await e.proc.resize_async(h, w)

    def forget_container(self, cid: str) -> None:
        for eid in [k for k, v in self.by_id.items() if v.container.id == cid]:
            del self.by_id[eid]

    # ---- capture-exec: a daemon-run command (health probes) --------------------------------------

    async def run_capture(self, c: Container, cmd: list[str], *, limit: int, timeout: float) -> Captured:
        """Run `cmd` in the running container `c` for the daemon itself, as dockerd runs health probes:
        an exec with the container's user, environment and working directory, no TTY, no stdin; stdout
        and stderr collected together, the first `limit` bytes kept. A process still running `timeout`
        seconds after it started is killed (SIGKILL, with its process group) and `timed_out` is set.

        Events as dockerd's: exec_create, exec_start, then exec_die once reaped (none when it cannot
        start). The session is forgotten once reaped, so probes do not pile up in `ExecIDs`.
        Raises Conflict when the container is not running or is paused, HatobaError("OCI runtime exec
        failed: ...") when the process cannot start. Cancelling the call kills the process.
        """
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.get("Paused"):
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not cmd:
            raise HatobaError("No exec command specified")
        eid = os.urandom(32).hex()
        e = Exec(eid, c, {"Cmd": list(cmd), "AttachStdout": True, "AttachStderr": True, "Tty": False})
        self.by_id[eid] = e
        c.exec_ids.add(eid)
        events, label = self.containers.events, _event_cmd(cmd)
        events.emit("container", f"exec_create: {label}", c.id, c.event_attrs(execID=eid))
        e.started = True
        events.emit("container", f"exec_start: {label}", c.id, c.event_attrs(execID=eid))
        exec_dir = os.path.join(self.containers.bundle(c), "exec", eid[:16])
        try:
            os.makedirs(exec_dir, exist_ok=True)
            process = self._process(e)
        except (OSError, HatobaError) as err:
            self._forget_capture(e, exec_dir)
            raise HatobaError(err.message if isinstance(err, HatobaError) else
                              f"OCI runtime exec failed: {err.strerror}: unknown") from None
        starting = asyncio.ensure_future(self.containers.rt(c).exec(c.id, exec_dir, process, tty=False, stdin=False))
        try:
            proc = await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(lambda t: self._abandon_capture(e, exec_dir, t))
            raise
        except OCIRuntimeError as err:
            e.exit_code = 126 if "permission denied" in err.message else 127
            self._forget_capture(e, exec_dir)
            raise HatobaError(f"OCI runtime exec failed: {err.message}: unknown") from None
        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            pidfd = -1  # already gone: nothing left to kill
        e.proc, e.pid, e.running = proc, proc.pid, True
        reaper = asyncio.ensure_future(self._reap(e, exec_dir))
        reaper.add_done_callback(lambda _: self._forget_capture(e, None))
        sock = proc.sock
        proc.sock = None
        reading = asyncio.ensure_future(_collect(sock, limit)) if sock is not None else None
        try:
            waits = {reaper} | ({reading} if reading is not None else set())
            _, pending = await asyncio.wait(waits, timeout=timeout)
            timed_out = bool(pending)
            if timed_out:
                _kill_group(proc.pid, pidfd)
                await asyncio.wait({reaper}, timeout=5)
            out, truncated = (reading.result() if reading is not None and reading.done() and not reading.cancelled()
                              else (bytearray(), False))
            return Captured(None if timed_out else e.exit_code, bytes(out), truncated, timed_out)
        except asyncio.CancelledError:
            _kill_group(proc.pid, pidfd)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({reaper}, timeout=1)
            raise
        finally:
            if reading is not None and not reading.done():
                reading.cancel()
            if sock is not None:
                sock.close()
            if pidfd >= 0:
                os.close(pidfd)

    def _abandon_capture(self, e: Exec, exec_dir: str, starting: asyncio.Future) -> None:
        """A capture was cancelled while its process was starting: kill it once started, then reap."""
        if starting.cancelled() or starting.exception() is not None:
            self._forget_capture(e, exec_dir)
            return
        proc = starting.result()
        if proc.sock is not None:
            proc.sock.close()
            proc.sock = None
        try:
            pidfd = os.pidfd_open(proc.pid)
        except OSError:
            pidfd = -1
        _kill_group(proc.pid, pidfd)
        if pidfd >= 0:
            os.close(pidfd)
        e.proc, e.pid, e.running = proc, proc.pid, True
        reaper = asyncio.ensure_future(self._reap(e, exec_dir))
        reaper.add_done_callback(lambda _: self._forget_capture(e, None))

    def _forget_capture(self, e: Exec, exec_dir: str | None) -> None:
        if exec_dir is not None:
            shutil.rmtree(exec_dir, ignore_errors=True)
        self.by_id.pop(e.id, None)
        e.container.exec_ids.discard(e.id)
