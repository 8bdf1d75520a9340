"""Exec sessions (`docker exec`): create, start (attached or detached), inspect, resize."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from typing import Any

from hatoba.engine.attach import AttachSession, ClientStream
from hatoba.engine.containers import Container, Containers
from hatoba.errors import Conflict, HatobaError, NotFound
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

    def inspect(self) -> dict[str, Any]:
        b = self.body
        cmd = list(b.get("Cmd") or [])
        return {
            "ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
            "ProcessConfig": {"tty": bool(b.get("Tty")), "entrypoint": cmd[0] if cmd else "",
                              "arguments": cmd[1:], "privileged": bool(b.get("Privileged")),
                              **({"user": b["User"]} if b.get("User") else {})},
            "OpenStdin": bool(b.get("AttachStdin")), "OpenStderr": bool(b.get("AttachStderr")),
            "OpenStdout": bool(b.get("AttachStdout")), "CanRemove": False,
            "ContainerID": self.container.id, "DetachKeys": b.get("DetachKeys") or "", "Pid": self.pid,
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

    def create(self, ref: str, body: dict[str, Any]) -> str:
        c = self.containers.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.state.get("Paused"):
            raise Conflict(f"Container {c.id} is paused, unpause the container before exec")
        if not body.get("Cmd"):
            raise HatobaError("No exec command specified")
        eid = os.urandom(32).hex()
        self.by_id[eid] = Exec(eid, c, body)
        c.exec_ids.add(eid)
        self.containers.events.emit("container", f"exec_create: {' '.join(body['Cmd'])}", c.id,
                                    c.event_attrs(execID=eid))
        return eid

    def _process(self, e: Exec) -> dict[str, Any]:
        c = e.container
        bundle = self.containers.bundle(c)
        with open(os.path.join(bundle, "config.json")) as f:
            spec = json.load(f)
        proc = dict(spec["process"])
        b = e.body
        proc["args"] = list(b["Cmd"])
        proc["terminal"] = bool(b.get("Tty"))
        env = list(proc.get("env") or [])
        for kv in b.get("Env") or []:
            k = kv.split("=", 1)[0]
            env = [x for x in env if x.split("=", 1)[0] != k] + [kv]
        proc["env"] = env
        if b.get("WorkingDir"):
            proc["cwd"] = b["WorkingDir"]
        if b.get("User"):
            try:
                u = resolve_user(spec["root"]["path"], b["User"])
            except UserError as err:
                raise HatobaError(str(err)) from None
            proc["user"] = {"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}
        proc.pop("consoleSize", None)
        return proc

    async def start(self, eid: str, *, detach: bool, tty: bool | None, client: ClientStream | None) -> None:
        e = self.get(eid)
        if e.started:
            raise Conflict(f"Error: Exec command {eid} has already run")
        c = e.container
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        e.started = True
        exec_dir = os.path.join(self.containers.bundle(c), "exec", eid[:16])
        os.makedirs(exec_dir, exist_ok=True)
        b = e.body
        use_tty = bool(b.get("Tty")) if tty is None else tty
        stdin = bool(b.get("AttachStdin")) and not detach
        try:
            proc = await self.containers.rt(c).exec(c.id, exec_dir, self._process(e), tty=use_tty, stdin=stdin,
                                                    attached=client is not None)
        except OCIRuntimeError as err:
            e.exit_code = 126 if "permission denied" in err.message else 127
            shutil.rmtree(exec_dir, ignore_errors=True)
            if client is not None:
                msg = f"OCI runtime exec failed: {err.message}: unknown\r\n".encode()
                client.write(msg if use_tty else frame("stdout", msg))  # dockerd frames it as stdout
                client.close()
                e.done.set_result(None)
                return
            raise HatobaError(f"OCI runtime exec failed: {err.message}: unknown") from None
        e.proc, e.pid, e.running = proc, proc.pid, True
        self.containers.events.emit("container", f"exec_start: {' '.join(b['Cmd'])}", c.id,
                                    c.event_attrs(execID=eid))
        session = None
        if client is not None and proc.sock is not None:
            session = AttachSession(client, tty=use_tty, stdin=stdin, stdout=bool(b.get("AttachStdout", True)),
                                    stderr=bool(b.get("AttachStderr", True)), stdin_once=True,
                                    close_client=False)
        asyncio.ensure_future(self._reap(e, exec_dir))
        if session is not None:
            session.connect(proc.sock)  # type: ignore[arg-type]
            await session.done
            await e.done
            client.close()  # only now: the CLI reads ExitCode right after the stream ends

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
