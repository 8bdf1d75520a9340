"""What happens when a container's process ends: exit reaping, restart policies, `--rm`, waiters,
and live-restore (re-adopting containers whose conmon outlived a daemon restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

from hatoba.engine.container import Container
from hatoba.engine.reconcile import reconcile
from hatoba.errors import HatobaError, NotFound
from hatoba.golang import rfc3339
from hatoba.runtime import cgroups
from hatoba.runtime.conmon import OCIRuntimeError, Runtime

if TYPE_CHECKING:
    from hatoba.engine.container import Manager

log = logging.getLogger("hatoba.engine")

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


def restart_on_daemon_start(c: Container) -> bool:
    """dockerd's rules for containers that are down when the daemon starts."""
    rp = c.host_config.get("RestartPolicy") or {}
    policy, maxc = rp.get("Name", "no"), int(rp.get("MaximumRetryCount") or 0)
    on_failure = (policy == "on-failure" and not c.manual_stop and c.state.get("ExitCode", 0) != 0
                  and (maxc == 0 or c.restart_count < maxc))
    return (not c.running and not c.state.get("Restarting") and c.has_been_started
            and (policy == "always" or (policy == "unless-stopped" and not c.manual_stop) or on_failure))


class Monitor:
    """Mixin of `Containers`: exits, restart policies, waiters and live-restore."""

    # ---- live-restore ---------------------------------------------------------------------------

    async def restore(self: Manager) -> None:
        """Load every container; re-adopt the running ones whose conmon survived; reap the rest."""
        await reconcile(self)  # first: orphans of a crash killed and removed, frozen commits thawed
        for doc in self.db.all("containers"):
            c = Container(doc)
            self.by_id[c.id] = c
            self.by_name[c.name] = c.id
        for c in list(self.by_id.values()):
            if not (c.running or c.state.get("Restarting")):
                continue
            pid = Runtime.conmon_alive(self.bundle(c))
            if pid and c.running:
                c.conmon_pid = pid
                c.monitor = asyncio.ensure_future(self._monitor(c, pid))
                self.health.resume(c)  # live-restore resumes the checks where they were
                continue
            if not c.running:  # it was waiting out its restart back-off: that exit is handled already
                c.restarting_task = asyncio.ensure_future(self._restart_later(c, 0))
                continue
            code = Runtime.read_exit_code(os.path.join(self.exec_root, "exits"), c.id)
            try:  # it exited while no daemon watched: conmon wrote the exit file at that time
                finished: float | None = os.stat(os.path.join(self.exec_root, "exits", c.id)).st_mtime
            except OSError:
                finished = None
            await self._handle_exit(c, 137 if code is None else code, finished)
        for c in [c for c in self.by_id.values() if restart_on_daemon_start(c)]:
            try:
                await self.start(c.id)
            except HatobaError as e:
                log.warning("restart of %s after daemon start failed: %s", c.id[:12], e.message)

    # ---- exit -----------------------------------------------------------------------------------

    async def _monitor(self: Manager, c: Container, conmon_pid: int) -> None:
        try:
            await self.runtime.watch(conmon_pid)
        except asyncio.CancelledError:
            return
        code = Runtime.read_exit_code(os.path.join(self.exec_root, "exits"), c.id)
        if code is None:
            code = 137
        async with c.lock:
            if c.conmon_pid != conmon_pid or not c.running:
                return
            await self._handle_exit(c, code)

    async def _handle_exit(self: Manager, c: Container, code: int, finished: float | None = None) -> None:
        self.health.stop(c)  # no probes while it is not running
        oom = Runtime.oom_killed(self.persist_dir(c)) or (code == 137 and cgroups.oom_killed(self.cgroups_path(c)))
        try:
            await self.rt(c).delete(c.id, force=True)
        except OCIRuntimeError as e:
            log.warning("runc delete %s: %s", c.id[:12], e.message)
        with contextlib.suppress(OSError):
            cgroups.remove_cgroup(self.cgroups_path(c))
        self.snapshots.unmount(c.id)
        c.state.update({"Status": "exited", "Running": False, "Paused": False, "Restarting": False, "Pid": 0,
                        "ExitCode": code, "OOMKilled": oom, "FinishedAt": rfc3339(finished or time.time())})
        c.conmon_pid = 0
        self._save(c)
        if oom:
            self.events.emit("container", "oom", c.id, c.event_attrs())
        self.events.emit("container", "die", c.id, c.event_attrs(exitCode=code))
        for fut in c.exit_waiters:
            if not fut.done():
                fut.set_result(code)
        c.exit_waiters.clear()
        if self._should_restart(c, code):
            c.restart_count += 1
            c.state.update({"Restarting": True, "Status": "restarting"})
            self._save(c)
            delay = min(0.1 * (2 ** min(c.restart_count - 1, 10)), 60.0)
            c.restarting_task = asyncio.ensure_future(self._restart_later(c, delay))
            return
        if c.host_config.get("AutoRemove"):
            asyncio.ensure_future(self._auto_remove(c))

    def _should_restart(self: Manager, c: Container, code: int) -> bool:
        if c.manual_stop or c.removing:
            return False
        rp = c.host_config.get("RestartPolicy") or {}
        name = rp.get("Name", "no")
        if name in ("always", "unless-stopped"):
            return True
        if name == "on-failure" and code != 0:
            maxc = int(rp.get("MaximumRetryCount") or 0)
            return maxc == 0 or c.restart_count < maxc
        return False

    async def _restart_later(self: Manager, c: Container, delay: float) -> None:
        await asyncio.sleep(delay)
        if c.id not in self.by_id or c.manual_stop or not c.state.get("Restarting"):
            return
        async with c.lock:
            if c.running:
                return
            try:
                await self._start_locked(c)
            except HatobaError as e:
                c.state.update({"Restarting": False, "Status": "exited", "Error": e.message})
                self._save(c)

    async def _auto_remove(self: Manager, c: Container) -> None:
        try:
            await self.remove(c.id, force=True)
        except NotFound:
            pass

    # ---- waiting --------------------------------------------------------------------------------

    async def wait_exit(self: Manager, c: Container, timeout: float | None) -> int | None:
        """The exit code once the container is down, or None after `timeout` seconds."""
        if not c.running:
            return c.state.get("ExitCode", 0)
        fut = asyncio.get_running_loop().create_future()
        c.exit_waiters.append(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None

    def waiter(self: Manager, c: Container, condition: str) -> asyncio.Future:
        """A future resolved with the exit code: `not-running` (now if down), `next-exit`, `removed`."""
        fut = asyncio.get_running_loop().create_future()
        if condition == "removed":
            c.remove_waiters.append(fut)
        elif condition == "next-exit" or c.running or c.state.get("Restarting"):
            c.exit_waiters.append(fut)
        else:
            fut.set_result(c.state.get("ExitCode", 0))
        return fut
