"""Starting and signalling containers: start (spec, conmon + runc create, attach hand-over, runc start),
stop, kill, restart, pause and unpause.

A start that fails at any step releases what it took (rootfs mount, runc state, cgroup) and leaves
the container usable (Created, or Exited with the error recorded), as dockerd does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal as _signal
import time
from typing import TYPE_CHECKING, Any

from hatoba.engine import mounts
from hatoba.engine.signals import parse_signal
from hatoba.errors import Conflict, HatobaError, InvalidParameter, NotModified
from hatoba.golang import rfc3339
from hatoba.network import etcfiles, sandbox
from hatoba.runtime import cgroups
from hatoba.runtime.conmon import OCIRuntimeError
from hatoba.runtime.spec import DEFAULT_PATH, SpecError, build_spec
from hatoba.runtime.users import UserError, resolve_user
from hatoba.storage.paths import resolve_in_root

if TYPE_CHECKING:
    from hatoba.engine.container import Container, Manager

log = logging.getLogger("hatoba.engine")


INIT_PATH = "/sbin/docker-init"  # where dockerd mounts its init (tini) in the container
INIT_CANDIDATES = ("docker-init", "tini-static", "tini")


def find_init(configured: str = "") -> str | None:
    """The init binary `--init` injects: the configured one, else docker-init or Debian's tini."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in INIT_CANDIDATES:
        for d in ("/usr/libexec/docker", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return os.path.realpath(p)
    return None


def make_volume_mountpoints(rootfs: str, cfg: dict[str, Any], binds: list[mounts.Mount]) -> None:
    """Anonymous volumes are kept in the container's own filesystem until volumes land; their mount
    points exist from create on, as with dockerd (a `docker cp` into one before the start works)."""
    bound = {m.destination for m in binds}
    for vol in cfg.get("Volumes") or {}:
        if isinstance(vol, str) and vol.startswith("/") and vol not in bound:
            target = resolve_in_root(rootfs, vol)
            if not os.path.lexists(target):
                os.makedirs(target, exist_ok=True)


def _private_file(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


class Lifecycle:
    """Mixin of `Containers`: the start path and the signals sent to running containers."""

    def init_binary(self: Manager) -> str:
        path = find_init(getattr(self, "init_path", ""))
        if path is None:
            raise InvalidParameter("exec: \"docker-init\": executable file not found in $PATH "
                                   "(install Debian's tini for --init)")
        return path

    # ---- start ----------------------------------------------------------------------------------

    async def start(self: Manager, ref: str) -> None:
        c = self.get(ref)
        async with c.lock:
            try:
                await self._start_locked(c)
            except HatobaError as e:
                if c.host_config.get("AutoRemove") and not isinstance(e, NotModified):
                    asyncio.ensure_future(self._auto_remove(c))  # dockerd removes it; `run --rm` waits for that
                raise

    def _reset_run_files(self: Manager, c: Container, bundle: str) -> None:
        for stale in ("attach", "ctl", "winsz", "pidfile", "conmon.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(bundle, stale))
        for stale in (os.path.join(self.exec_root, "exits", c.id), os.path.join(self.persist_dir(c), "oom"),
                      os.path.join(self.persist_dir(c), "exit")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)

    async def _release(self: Manager, c: Container, *, runc: bool) -> None:
        """Undo a partial start: runc state, the cgroup, the rootfs mount."""
        if runc:
            with contextlib.suppress(OCIRuntimeError):
                await self.rt(c).delete(c.id, force=True)
        with contextlib.suppress(OSError):
            cgroups.remove_cgroup(self.cgroups_path(c))
        self.snapshots.unmount(c.id)

    def _failed_start(self: Manager, c: Container, code: int, msg: str) -> None:
        c.state.update({"Status": "exited" if c.has_been_started else "created", "ExitCode": code, "Error": msg})
        self._save(c)
        for sess in c.pending_attach:
            sess.fail()
        c.pending_attach.clear()

    async def _start_locked(self: Manager, c: Container) -> None:
        if c.paused:
            raise Conflict("cannot start a paused container, try unpause instead")
        if c.running:
            raise NotModified("container already started")
        if c.removing:
            raise Conflict("container is marked for removal and cannot be started")
        bundle = self.bundle(c)
        os.makedirs(bundle, mode=0o700, exist_ok=True)
        self._reset_run_files(c, bundle)
        try:
            rootfs = self.snapshots.mount(c.id, c.chain)
        except OSError as e:
            log.error("mounting the rootfs of %s failed: %s", c.id[:12], e)
            self._failed_start(c, 128, "error mounting the container's root filesystem")
            raise HatobaError(f"error mounting the root filesystem of container {c.id[:12]}: "
                              f"{os.strerror(e.errno) if e.errno else e}") from None
        created = None
        try:
            spec = self._spec(c, rootfs)
            _private_file(os.path.join(bundle, "config.json"), json.dumps(spec))
            created = await self.rt(c).create(
                c.id, bundle, tty=c.tty, stdin=bool(c.config.get("OpenStdin")), log_path=self.log_path(c),
                exit_dir=os.path.join(self.exec_root, "exits"), persist_dir=self.persist_dir(c),
                # like dockerd: only a non-TTY StdinOnce container loses stdin when its attach ends
                leave_stdin_open=c.tty or not c.config.get("StdinOnce"),
                log_driver="none" if (c.host_config.get("LogConfig") or {}).get("Type") == "none" else "k8s-file")
        except OCIRuntimeError as e:
            await self._release(c, runc=True)
            msg = e.message
            code = 127 if ("executable file not found" in msg or "no such file or directory" in msg) else (
                126 if "permission denied" in msg else 128)
            self._failed_start(c, code, msg)
            err = HatobaError(f"failed to create shim task: OCI runtime create failed: {msg}: unknown")
            if code in (126, 127):
                err.status = 400
            raise err from None
        except HatobaError as e:
            await self._release(c, runc=False)
            self._failed_start(c, 128, e.message)
            raise
        except BaseException as e:
            await asyncio.shield(self._release(c, runc=True))
            if isinstance(e, Exception):
                log.exception("start of %s failed", c.id[:12])
                self._failed_start(c, 128, "internal error while starting the container")
                raise HatobaError(f"cannot start container {c.id[:12]}: internal error ({type(e).__name__})") from None
            raise
        c.conmon_pid = created.conmon_pid
        for sess in c.pending_attach:
            try:
                sess.connect(await self.runtime.open_attach(bundle))
            except (OSError, OCIRuntimeError) as e:
                log.warning("attach to %s failed: %s", c.id[:12], e)
                sess.fail()
        c.pending_attach.clear()
        try:
            await self.rt(c).start(c.id)
        except OCIRuntimeError as e:
            await self._release(c, runc=True)
            self._failed_start(c, 128, e.message)
            raise HatobaError(f"OCI runtime start failed: {e.message}: unknown") from None
        c.state.update({"Status": "running", "Running": True, "Paused": False, "Restarting": False,
                        "OOMKilled": False, "Dead": False, "Pid": created.pid, "ExitCode": 0, "Error": "",
                        "StartedAt": rfc3339(time.time())})
        c.has_been_started = True
        c.manual_stop = False
        self.health.start(c)  # status "starting", probes scheduled (saved just below)
        self._save(c)
        c.monitor = asyncio.ensure_future(self._monitor(c, created.conmon_pid))
        self.events.emit("container", "start", c.id, c.event_attrs())

    def _spec(self: Manager, c: Container, rootfs: str) -> dict[str, Any]:
        cfg, hc = c.config, c.host_config
        try:
            user = resolve_user(rootfs, cfg.get("User") or "", [str(g) for g in hc.get("GroupAdd") or []])
        except UserError as e:
            raise HatobaError(str(e)) from None
        env = list(cfg.get("Env") or [])
        keys = {e.split("=", 1)[0] for e in env}
        if "PATH" not in keys:
            env.insert(0, f"PATH={DEFAULT_PATH}")
        if "HOSTNAME" not in keys:
            env.insert(1, f"HOSTNAME={cfg.get('Hostname')}")
        if c.tty and "TERM" not in keys:
            env.append("TERM=xterm")
        if "HOME" not in keys:
            env.append(f"HOME={user.home or '/'}")
        mode = hc.get("NetworkMode") or "default"
        netns = sandbox.netns_for(mode, self.get)
        binds = mounts.parse(hc)
        mounts.prepare_sources(binds)
        hostname = cfg.get("Hostname") or c.id[:12]
        extra = etcfiles.write(self.data_dir(c), hostname=hostname, domainname=cfg.get("Domainname") or "",
                               host_config=hc, host_mode=(mode == "host"))
        extra += [m.oci() for m in binds]
        args = [c.path, *c.args]
        if hc.get("Init"):
            init = self.init_binary()
            extra.append({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro"]})
            args = [INIT_PATH, "--", *args]
        cwd = cfg.get("WorkingDir") or "/"
        if cwd != "/":
            target = resolve_in_root(rootfs, cwd)  # resolved inside the rootfs: image symlinks cannot lead out
            if not os.path.lexists(target):
                os.makedirs(target, exist_ok=True)
                os.chown(target, user.uid, user.gid)
        make_volume_mountpoints(rootfs, cfg, binds)
        try:
            return build_spec(rootfs=rootfs, args=args, env=env, cwd=cwd, user=user,
                              hostname=hostname, tty=c.tty, host_config=hc, cgroups_path=self.cgroups_path(c),
                              netns=netns, extra_mounts=extra, readonly_rootfs=bool(hc.get("ReadonlyRootfs")),
                              stop_signal=cfg.get("StopSignal"))
        except SpecError as e:
            raise InvalidParameter(str(e)) from None

    # ---- stop / kill / restart / pause ----------------------------------------------------------

    async def stop(self: Manager, ref: str, timeout: int | None = None, sig: str | None = None) -> None:
        c = self.get(ref)
        if c.state.get("Restarting") and not c.running:
            c.manual_stop = True
            c.state.update({"Restarting": False, "Status": "exited"})
            self._save(c)
            self.events.emit("container", "stop", c.id, c.event_attrs())
            return
        stop_sig = parse_signal(sig or c.config.get("StopSignal") or "TERM", _signal.SIGTERM)
        if not c.running:
            raise NotModified("container already stopped")
        c.manual_stop = True
        self._save(c)
        if timeout is None:
            timeout = c.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        if c.paused:
            await self.unpause(c.id)
        await self._signal(c, stop_sig)
        code = await self.wait_exit(c, timeout if timeout >= 0 else None)
        if code is None:
            await self._signal(c, _signal.SIGKILL)
            await self.wait_exit(c, None)
        self.events.emit("container", "stop", c.id, c.event_attrs())

    async def _signal(self: Manager, c: Container, sig: int) -> None:
        self.events.emit("container", "kill", c.id, c.event_attrs(signal=sig))
        try:
            await self.rt(c).kill(c.id, sig, all_procs=(sig == _signal.SIGKILL))
        except OCIRuntimeError as e:
            if not e.not_running and not e.not_found:
                raise HatobaError(f"Cannot kill container: {c.id}: {e.message}") from None

    async def kill(self: Manager, ref: str, sig: str | None) -> None:
        c = self.get(ref)
        signum = parse_signal(sig)
        if not c.running:
            raise Conflict(f"Cannot kill container: {ref}: Container {c.id} is not running")
        if signum in (_signal.SIGKILL, parse_signal(c.config.get("StopSignal") or "TERM", _signal.SIGTERM)):
            c.manual_stop = True  # as dockerd: a kill is a manual stop, the restart policy does not apply
            self._save(c)
        if c.paused and signum == _signal.SIGKILL:
            await self._signal(c, signum)
            with contextlib.suppress(OCIRuntimeError):
                await self.rt(c).resume(c.id)
        else:
            await self._signal(c, signum)
        if signum == _signal.SIGKILL:
            await self.wait_exit(c, 5)

    async def restart(self: Manager, ref: str, timeout: int | None = None) -> None:
        c = self.get(ref)
        if c.running:
            await self.stop(ref, timeout)
        async with c.lock:
            if not c.running:
                await self._start_locked(c)
        self.events.emit("container", "restart", c.id, c.event_attrs())

    async def pause(self: Manager, ref: str) -> None:
        c = self.get(ref)
        if not c.running:
            raise Conflict(f"Container {c.id} is not running")
        if c.paused:
            raise Conflict(f"Container {c.id} is already paused")
        try:
            await self.rt(c).pause(c.id)
        except OCIRuntimeError as e:
            if e.not_running or e.not_found:
                raise Conflict(f"Container {c.id} is not running") from None
            raise HatobaError(f"Cannot pause container {c.id}: {e.message}") from None
        c.state.update({"Paused": True, "Status": "paused"})
        self.health.stop(c)  # no probes while paused
        self._save(c)
        self.events.emit("container", "pause", c.id, c.event_attrs())

    async def unpause(self: Manager, ref: str) -> None:
        c = self.get(ref)
        if not c.paused:
            raise Conflict(f"Container {c.id} is not paused")
        try:
            await self.rt(c).resume(c.id)
        except OCIRuntimeError as e:
            if not (e.not_running or e.not_found):
                raise HatobaError(f"Cannot unpause container {c.id}: {e.message}") from None
        c.state.update({"Paused": False, "Status": "running" if c.running else "exited"})
        if c.running:
            self.health.resume(c)  # probes again, status kept
        self._save(c)
        self.events.emit("container", "unpause", c.id, c.event_attrs())
