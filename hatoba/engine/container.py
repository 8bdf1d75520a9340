"""The container record: what is persisted of one container, and its live, unpersisted companions.

`Container.doc()` is the row written to SQLite on every state change; everything else on the
object (locks, waiters, attach sessions, the monitor task) lives only as long as the daemon.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hatoba.db import Database
    from hatoba.engine.events import Events
    from hatoba.images.store import ImageStore
    from hatoba.runtime.conmon import Runtime
    from hatoba.storage.snapshots import Snapshotter

ZERO_TIME = "0001-01-01T00:00:00Z"


def new_state() -> dict[str, Any]:
    """`State` of a container that was created and never started."""
    return {"Status": "created", "Running": False, "Paused": False, "Restarting": False, "OOMKilled": False,
            "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME}


class Container:
    """One container's persisted record plus its live, unpersisted companions."""

    def __init__(self, doc: dict[str, Any]):
        self.id: str = doc["Id"]
        self.name: str = doc["Name"]
        self.created: str = doc["Created"]
        self.path: str = doc["Path"]
        self.args: list[str] = doc["Args"]
        self.config: dict[str, Any] = doc["Config"]
        self.host_config: dict[str, Any] = doc["HostConfig"]
        self.image_id: str = doc["Image"]
        self.state: dict[str, Any] = doc["State"]
        self.restart_count: int = doc.get("RestartCount", 0)
        self.manual_stop: bool = doc.get("ManualStop", False)
        self.chain: list[str] = doc.get("Chain", [])
        self.conmon_pid: int = doc.get("ConmonPid", 0)
        self.has_been_started: bool = doc.get("HasBeenStarted", False)
        # live only
        self.lock = asyncio.Lock()
        self.pending_attach: list[Any] = []
        self.exit_waiters: list[asyncio.Future] = []
        self.remove_waiters: list[asyncio.Future] = []
        self.monitor: asyncio.Task | None = None
        self.exec_ids: set[str] = set()
        self.removing = False
        self.restarting_task: asyncio.Task | None = None

    def doc(self) -> dict[str, Any]:
        return {"Id": self.id, "Name": self.name, "Created": self.created, "Path": self.path, "Args": self.args,
                "Config": self.config, "HostConfig": self.host_config, "Image": self.image_id,
                "State": self.state, "RestartCount": self.restart_count, "ManualStop": self.manual_stop,
                "Chain": self.chain, "ConmonPid": self.conmon_pid, "HasBeenStarted": self.has_been_started}

    @property
    def running(self) -> bool:
        return bool(self.state.get("Running"))

    @property
    def paused(self) -> bool:
        return bool(self.state.get("Paused"))

    @property
    def tty(self) -> bool:
        return bool(self.config.get("Tty"))

    def event_attrs(self, **extra: Any) -> dict[str, str]:
        attrs = {"image": self.config.get("Image", ""), "name": self.name}
        for k, v in (self.config.get("Labels") or {}).items():
            attrs.setdefault(k, v)
        attrs.update({k: str(v) for k, v in extra.items()})
        return attrs


class Manager(Protocol):
    """The container manager as its parts see it (`engine.containers.Containers` implements it).

    The lifecycle and monitor mixins and the read-side modules (logs, rootfs, stats, top, attach,
    views) are typed against this, so none of them imports `engine.containers` back."""

    db: Database
    images: ImageStore
    snapshots: Snapshotter
    runtime: Runtime
    events: Events
    data_root: str
    exec_root: str
    by_id: dict[str, Container]
    by_name: dict[str, str]
    health: Any  # engine.health.HealthChecks (which types its containers with this module)

    def get(self, ref: str) -> Container: ...
    def data_dir(self, c: Container | str) -> str: ...
    def bundle(self, c: Container | str) -> str: ...
    def log_path(self, c: Container) -> str: ...
    def persist_dir(self, c: Container) -> str: ...
    def cgroups_path(self, c: Container) -> str: ...
    def rt(self, c: Container) -> Runtime: ...
    def init_binary(self) -> str: ...
    def _save(self, c: Container) -> None: ...
    async def start(self, ref: str) -> None: ...
    async def stop(self, ref: str, timeout: int | None = None, sig: str | None = None) -> None: ...
    async def unpause(self, ref: str) -> None: ...
    async def remove(self, ref: str, force: bool = False, volumes: bool = False, link: bool = False) -> None: ...
    async def _start_locked(self, c: Container) -> None: ...
    async def _release(self, c: Container, *, runc: bool) -> None: ...
    def _failed_start(self, c: Container, code: int, msg: str) -> None: ...
    def _reset_run_files(self, c: Container, bundle: str) -> None: ...
    def _spec(self, c: Container, rootfs: str) -> dict[str, Any]: ...
    async def _signal(self, c: Container, sig: int) -> None: ...
    async def _monitor(self, c: Container, conmon_pid: int) -> None: ...
    async def _handle_exit(self, c: Container, code: int, finished: float | None = None) -> None: ...
    def _should_restart(self, c: Container, code: int) -> bool: ...
    async def _restart_later(self, c: Container, delay: float) -> None: ...
    async def _auto_remove(self, c: Container) -> None: ...
    async def wait_exit(self, c: Container, timeout: float | None) -> int | None: ...
    def waiter(self, c: Container, condition: str) -> asyncio.Future: ...
