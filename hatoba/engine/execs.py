"""Exec sessions (`docker exec`): create, start (attached or detached), inspect, resize.

The process runs with the exec's own settings (create's `Tty` decides whether it gets a terminal);
the start request's `Tty` only decides how the output is framed on the hijacked stream, as with
dockerd. Detach keys (default ctrl-p,ctrl-q) end an attached session without stopping the process.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

from hatoba.engine.attach import AttachSession, ClientStream, parse_detach_keys
from hatoba.engine.container import Container
from hatoba.engine.containers import Containers
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotFound
from hatoba.runtime.conmon import ExecProcess, OCIRuntimeError
from hatoba.runtime.logs import frame
from hatoba.runtime.users import UserError, resolve_user


def _get(body: dict[str, Any], key: str) -> Any:
    """A field of the exec config, matched case-insensitively as Go's JSON decoding does."""
    if key in body:
        return body[key]
    low = key.lower()
    for k, v in body.items():
        if k.lower() == low:
            return v
    return None


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
        return list(_get(self.body, "Cmd") or [])

    @property
    def tty(self) -> bool:
        return bool(_get(self.body, "Tty"))

    def inspect(self) -> dict[str, Any]:
        b = self.body
        cmd = self.cmd
        user = _get(b, "User")
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": self.tty, "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(_get(b, "Privileged")),
                              **({"user": user} if user else {})},
            "OpenStdin": bool(_get(b, "AttachStdin")), "OpenStderr": bool(_get(b, "AttachStderr")),
            "OpenStdout": bool(_get(b, "AttachStdout")), "CanRemove": False,
            "ContainerID": self.container.id, "DetachKeys": _get(b, "DetachKeys") or "", "Pid": self.pid,
        }


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
        cmd = _get(body, "Cmd")
        if not cmd:
            raise InvalidParameter("No exec command specified")
        parse_detach_keys(_get(body, "DetachKeys"))
        eid = os.urandom(32).hex()
        self.by_id[eid] = Exec(eid, c, body)
        c.exec_ids.add(eid)
        self.containers.events.emit("container", f"exec_create: {' '.join(cmd)}", c.id, c.event_attrs(execID=eid))
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
        for kv in _get(b, "Env") or []:
            k = kv.split("=", 1)[0]
            env = [x for x in env if x.split("=", 1)[0] != k] + [kv]
        proc["env"] = env
        if _get(b, "WorkingDir"):
            proc["cwd"] = _get(b, "WorkingDir")
        if _get(b, "User"):
            try:
                u = resolve_user(spec["root"]["path"], _get(b, "User"))
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
        stdin = bool(_get(b, "AttachStdin")) and not detach
        try:
            proc = await self.containers.rt(c).exec(c.id, exec_dir, self._process(e), tty=e.tty, stdin=stdin)
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
        self.containers.events.emit("container", f"exec_start: {' '.join(e.cmd)}", c.id,
                                    c.event_attrs(execID=eid))
        asyncio.ensure_future(self._reap(e, exec_dir))
        if client is None or proc.sock is None:
            return client
        session = AttachSession(client, tty=not framed, stdin=stdin,
                                stdout=bool(_get(b, "AttachStdout") if _get(b, "AttachStdout") is not None else True),
                                stderr=bool(_get(b, "AttachStderr") if _get(b, "AttachStderr") is not None else True),
                                stdin_once=True, close_client=False,
                                detach_keys=parse_detach_keys(_get(b, "DetachKeys")))
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
